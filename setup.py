"""aecore's build script. `kernels/` is installed as the subpackage `aecore.kernels` (never as a
bare top-level `kernels` module), through package_dir."""

from setuptools import setup

setup(
    name="aecore",
    version="0.1.0",
    description="A from-scratch autoencoder engine: NumPy/CuPy tensors, autograd-lite, Numba kernels",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=["aecore", "aecore.nn", "aecore.data", "aecore.io", "aecore.models", "aecore.inspect",
              "aecore.train", "aecore.cli", "aecore.viz", "aecore.optim", "aecore.onnx",
              "aecore.distributed", "aecore.kernels", "aecore.kernels.conv2d"],
    package_dir={"aecore": "aecore", "aecore.kernels": "kernels"},
    install_requires=["numpy>=1.22", "numba>=0.58"],
    extras_require={
        # the whole suite: ONNX export is checked in onnxruntime, ae.save read back by safetensors
        "test": ["pytest>=7", "hypothesis>=6.80", "numba-cuda[cu13]>=0.20", "safetensors>=0.4",
                 "onnx>=1.14", "onnxruntime>=1.16"],
        "viz": ["matplotlib>=3.5"],
        "images": ["pillow>=9"],
        "cuda": ["cupy-cuda13x>=13", "numba-cuda[cu13]>=0.20"],
        "safetensors": ["safetensors>=0.4"],          # ae.save writes safetensors (else npz)
        "onnx": ["onnx>=1.14", "onnxruntime>=1.16"],  # ae.onnx.export, and running the files
        # data-parallel training: `mpiexec -n 4 aecore train` (mpich brings mpiexec; a cluster's
        # own MPI works too, with mpi4py built against it)
        "mpi": ["mpi4py>=4", "mpich>=4"],
    },
    entry_points={"console_scripts": ["aecore=aecore.cli:main"]},
)
