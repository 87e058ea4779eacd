// The fused kernels as one translation unit: libtorch's autograd headers take about 8 CPU-seconds
// to parse, once per file compiled, and a cold build on two cores waits for every one of them.
#include "scan.cpp"
#include "causal_conv.cpp"
