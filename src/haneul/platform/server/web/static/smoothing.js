// Chart smoothing shared by the session and compare pages: TensorBoard's exponential moving average,
// debiased so the first points are not pulled towards zero. weight 0 (or less) leaves values as they are.
function haneulEma(values, weight) {
  if (!(weight > 0)) return values;
  let last = 0;
  return values.map((v, i) => {
    last = last * weight + (1 - weight) * v;
    return last / (1 - Math.pow(weight, i + 1));
  });
}
