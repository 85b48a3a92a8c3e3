export ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_CBWR=AVX2 NPY_DISABLE_CPU_FEATURES="X86_V4 AVX512_ICL AVX512_SPR" OPENBLAS_CORETYPE=Haswell
cd /tmp/ci706 && time make reproduce PROFILE=reports/trials/demo-cpu-kinds/demo-float32.toml
echo EXIT=$?
