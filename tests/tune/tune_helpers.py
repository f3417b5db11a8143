"""What the optimiser's tests share."""

from __future__ import annotations

#: a deterministic "training run": the loss falls towards (x - 0.3)^2 over `steps` steps; asked to
#: pause, it exits (with nothing to save, a resumed run starts again from step 1 to the same values)
QUADRATIC = '''
import argparse, sys, time
import haneul
p = argparse.ArgumentParser()
p.add_argument("--x", type=float, required=True)
p.add_argument("--steps", type=int, default=6)
p.add_argument("--sleep", type=float, default=0.05)
a = p.parse_args()
for step in range(1, a.steps + 1):
    if haneul.paused():
        sys.exit(0)
    haneul.report(step=step, loss=(a.x - 0.3) ** 2 + 1.0 / step)
    haneul.flush()
    time.sleep(a.sleep)
'''
