// Translation unit handed to NVRTC: it only composes the kernel families.
// Instantiations are named through CuPy's name_expressions, for example
//   cupyflash::flash_fwd_mma<cupyflash::BFloat16, 128, 128, 64, 4, 2>
//   cupyflash::flash_fwd_dmma<128, 64, 32, 4, 2>
//   cupyflash::flash_fwd_simt<float, 128, 8, 4>
#include "flash_fwd_dmma.cuh"
#include "flash_fwd_mma.cuh"
#include "flash_fwd_simt.cuh"
