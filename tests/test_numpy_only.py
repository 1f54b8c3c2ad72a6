"""aecore imports and trains with NumPy alone: without Numba the reference tier runs everything."""

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import sys, warnings
    sys.modules["numba"] = None          # makes `import numba` fail, as on a NumPy-only machine
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import aecore as ae
    numba_warnings = [w for w in caught if "Numba is not installed" in str(w.message)]
    assert len(numba_warnings) == 1, [str(w.message) for w in caught]

    import numpy as np
    import aecore.functional as F
    from aecore import kernels, nn, optim
    assert all("numba" not in kernels.tiers_of(op) for op in kernels.ops())

    ae.manual_seed(0)
    images = ae.tensor(np.random.default_rng(0).random((16, 1, 8, 8)), dtype=np.float32)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding="same"), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Upsample(scale_factor=2), nn.Conv2d(4, 1, 3, padding=1))
    optimizer = optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for step in range(30):
        loss = F.binary_cross_entropy_with_logits(model(images), images)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert model[0].weight.grad is not None
    assert losses[-1] < losses[0] - 0.02, losses  # random targets: BCE cannot fall much below 0.5
    print("numpy-only training ok", losses[0], losses[-1])
""")


def test_imports_and_trains_without_numba():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "numpy-only training ok" in result.stdout
