// Translation unit for the Hopper family, compiled only for sm_90a (wgmma and
// setmaxnreg exist nowhere else). Instantiations are named through CuPy's
// name_expressions, for example
//   cupyflash::flash_fwd_wgmma<cupyflash::BFloat16, 128, 128, 2, /*pingpong=*/false, /*persistent=*/false,
//                              /*fp32_terms=*/0, /*consumer_warpgroups=*/2>
#include "flash_fwd_wgmma.cuh"
