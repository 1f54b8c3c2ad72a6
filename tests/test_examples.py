"""Every script in examples/ runs to completion on tiny settings (in this process, so the Numba
kernels compiled by the other tests are reused), and importing one runs nothing.

The walkthroughs return what they printed as a dict; the checks below are the claims each one
makes to its reader (the hand-computed gradients equal the engine's, the transposed conv shows a
checkerboard and resize + conv does not, ...).
"""

import contextlib
import importlib.util
import io
from pathlib import Path

import numpy as np
import pytest

from aecore.io.png import read_png

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# tiny settings per example; an example missing here is still imported and asked for --help
TINY_ARGS = {
    "autograd_by_hand.py": [],
    "conv2d_traced.py": [],
    "checkerboard.py": ["--size", "8"],
    "denoising.py": ["--quick"],
    "vae_latent_map.py": ["--quick"],
    "dense_autoencoder.py": ["--epochs", "1", "--limit", "240", "--batch-size", "60"],
}
WRITES_TO_OUT = {"checkerboard.py", "denoising.py", "vae_latent_map.py"}


def load_example(name):
    spec = importlib.util.spec_from_file_location(f"aecore_example_{Path(name).stem}", EXAMPLES / name)
    module = importlib.util.module_from_spec(spec)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        spec.loader.exec_module(module)
    assert printed.getvalue() == "", f"importing {name} printed (it must do its work in main())"
    assert callable(getattr(module, "main", None)), f"{name} has no main(argv)"
    return module


def run_example(name, tmp_path, extra=()):
    module = load_example(name)
    argv = list(TINY_ARGS[name]) + list(extra)
    if name in WRITES_TO_OUT:
        argv += ["--out", str(tmp_path)]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        result = module.main(argv)
    return result, printed.getvalue()


def all_examples():
    return sorted(p.name for p in EXAMPLES.glob("*.py"))


def test_walkthroughs_exist():
    for name in ("autograd_by_hand.py", "conv2d_traced.py", "checkerboard.py", "denoising.py",
                 "vae_latent_map.py"):
        assert (EXAMPLES / name).exists(), name


def test_autograd_by_hand(tmp_path):
    result, printed = run_example("autograd_by_hand.py", tmp_path)
    assert result["max_diff"] < 1e-12
    assert abs(result["loss_hand"] - result["loss_engine"]) < 1e-12
    assert "dloss/dW" in printed and "central difference" in printed


@pytest.mark.parametrize("extra", [[], ["--stride", "1", "--padding", "same", "--size", "4"]])
def test_conv2d_traced(tmp_path, extra):
    result, printed = run_example("conv2d_traced.py", tmp_path, extra)
    assert result["max_diff"] < 1e-12
    assert "conv2d_backward_weight" in printed and "numba" in printed


def test_checkerboard(tmp_path):
    result, _ = run_example("checkerboard.py", tmp_path)
    constant = result["scores"]["constant input, uniform 3x3 kernel"]
    transposed, resize_conv, transposed_4x4 = constant
    assert transposed > 0.3            # 1, 2, 2, 4 taps per phase
    assert resize_conv < 1e-6          # every output pixel alike
    assert transposed_4x4 < 1e-6       # kernel divisible by the stride: even overlap
    for name, (t, r, _) in result["scores"].items():
        assert t > 5 * r, name
    picture = read_png(result["png"])
    assert picture.ndim == 2 and picture.shape[0] > 100 and picture.shape[1] > 100


def test_denoising(tmp_path):
    result, printed = run_example("denoising.py", tmp_path)
    for key in ("psnr_noisy", "psnr_untrained", "psnr_trained"):
        assert np.isfinite(result[key]) and 0 < result[key] < 60
    picture = read_png(result["png"])
    # rows: noisy, denoised, clean; 28x28 tiles enlarged 3x, a label margin on the left
    assert picture.shape[0] == 3 * (3 * 28 + 4 * 2) and picture.shape[1] > 3 * (8 * 30 + 2)
    assert "PSNR of the trained model" in printed


def test_vae_latent_map(tmp_path):
    result, printed = run_example("vae_latent_map.py", tmp_path)
    assert np.isfinite(result["nelbo"]) and result["nelbo"] > 0
    latent_map = read_png(result["latent_map"])
    assert latent_map.shape[:2] == (8 * 29 + 1, 8 * 29 + 1)   # --quick: an 8 x 8 grid
    scatter = read_png(result["latent_scatter"])
    assert scatter.ndim == 3 and scatter.shape[2] in (3, 4)   # coloured by label
    assert "digit 0" in printed


@pytest.mark.parametrize("name", [n for n in all_examples() if n not in
                                  ("autograd_by_hand.py", "conv2d_traced.py", "checkerboard.py",
                                   "denoising.py", "vae_latent_map.py")])
def test_other_examples(name, tmp_path):
    """The other scripts: run on their tiny settings, or at least import and answer --help."""
    if name in TINY_ARGS:
        run_example(name, tmp_path)
    else:
        module = load_example(name)
        with contextlib.redirect_stdout(io.StringIO()), pytest.raises(SystemExit) as exit_info:
            module.main(["--help"])
        assert exit_info.value.code == 0


def test_mnist_quality_on_real_mnist(tmp_path, mnist_dir):
    """The quality script end to end on a few real MNIST images (skipped without the files)."""
    import json
    module = load_example("mnist_quality.py")
    report = tmp_path / "quality.json"
    with contextlib.redirect_stdout(io.StringIO()):
        module.main(["--data", str(mnist_dir), "--epochs", "1", "--limit", "256", "--models", "ae",
                     "vae", "--json", str(report), "--quiet"])
    results = json.loads(report.read_text())
    assert results, "no results written"
    text = report.read_text()
    assert "ae" in text and "vae" in text
