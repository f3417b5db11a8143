"""haneul.quant: binary-coding quantisation (BCQ) of LMs and AlphaTuning (scale-only task adaptation).

``bcq`` quantises matrices, ``layers.BCQLinear`` stores and runs them packed, ``model`` quantises
and saves whole Hugging Face causal LMs, ``alphatuning`` trains and stores per-task scales,
``tasks`` holds the task data and metrics, ``rtn`` is the round-to-nearest baseline quantiser, and
``workflow`` runs the steps end to end (quantise, AlphaTune a task, evaluate) from a typed config, as
``haneul quant`` does.
"""

from __future__ import annotations

from haneul.quant.alphatuning import (
    AlphaTuneConfig,
    alphatune,
    load_task_alphas,
    prepare_alphatuning,
    save_task_alphas,
)
from haneul.quant.bcq import BCQResult, bcq_quantize, pack_bits, unpack_bits
from haneul.quant.layers import BCQLinear
from haneul.quant.model import (
    QuantReport,
    base_checksum,
    load_quantized,
    model_weight_bytes,
    quantize_model,
    save_quantized,
)
from haneul.quant.rtn import RTNResult, rtn_quantize, rtn_quantize_model
from haneul.quant.workflow import (
    AlphaTuneTaskConfig,
    AlphaTuneTaskResult,
    EvalTaskConfig,
    EvalTaskResult,
    QuantizeConfig,
    QuantizeResult,
    WeightSizes,
    alphatune_task,
    evaluate_task,
    quantize_base,
    write_d2t_set,
)

__all__ = [
    "AlphaTuneConfig",
    "AlphaTuneTaskConfig",
    "AlphaTuneTaskResult",
    "BCQLinear",
    "BCQResult",
    "EvalTaskConfig",
    "EvalTaskResult",
    "QuantReport",
    "QuantizeConfig",
    "QuantizeResult",
    "RTNResult",
    "WeightSizes",
    "alphatune",
    "alphatune_task",
    "base_checksum",
    "bcq_quantize",
    "evaluate_task",
    "load_quantized",
    "load_task_alphas",
    "model_weight_bytes",
    "pack_bits",
    "prepare_alphatuning",
    "quantize_base",
    "quantize_model",
    "rtn_quantize",
    "rtn_quantize_model",
    "save_quantized",
    "save_task_alphas",
    "unpack_bits",
    "write_d2t_set",
]
