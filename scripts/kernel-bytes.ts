// Prints the SIMD kernels' WebAssembly module, base64, for compileall to build into the programs (see src/simd/kernels.ts).
import { kernelModuleBytes } from '../src/simd/kernels.js';

process.stdout.write(Buffer.from(kernelModuleBytes()).toString('base64'));
