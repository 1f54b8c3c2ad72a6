"""aecore's benchmarks (not an installed package: run the scripts from a source checkout).

    python bench/kernels.py [--quick] [--ops conv2d_forward ...] [--tiers numba ...] [--out FILE]
    python bench/models.py  [--quick] [--models cae ae vae] [--steps 10] [--out FILE]
    python bench/roofline.py bench/results/kernels.json [--out roofline.png]

Each validates first (every tier against the NumPy reference, llm.c style), then times: warm-up
excluded (JIT compile), median of repeats; results are JSON with the machine described, written
to bench/results/, and a markdown table is printed. `aecore bench kernels|models` wraps them.
"""

try:
    # aecore before NumPy, so that every benchmark process runs with the OpenBLAS setting that
    # `import aecore` makes (aecore/blas.py), as the aecore command and a user's script get it.
    import aecore  # noqa: F401
except ImportError:  # common.import_aecore() says how to install it
    pass
