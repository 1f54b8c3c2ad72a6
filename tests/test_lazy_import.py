"""`import aecore` is lazy: the graph layer loads without the models, the data readers, the
inspector, training or the CLI, and every public name still resolves on first use. Run from a
bare source tree (not installed), `import aecore` says so in one line."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

# dir(aecore) when aecore/__init__ imported everything eagerly (its public names).
PUBLIC_NAMES = [
    "Function", "GradcheckError", "Tensor", "abs", "backend", "cat", "clamp", "clip", "concat",
    "data", "enable_grad", "exp", "flatten", "functional", "get_array_module", "gpu_available",
    "gradcheck", "inspect", "io", "is_grad_enabled", "kernels", "leaky_relu", "log", "losses",
    "manual_seed", "matmul", "mean", "models", "nn", "no_grad", "ones", "ops", "optim", "permute",
    "profile", "rand", "randn", "random", "relu", "reshape", "settings", "sigmoid", "softplus",
    "sqrt", "sum", "tanh", "tensor", "transpose", "use_tier", "zeros",
    # PyTorch's spellings (issue 17): factories, joins, reductions, comparisons, files, export
    "arange", "linspace", "full", "empty", "zeros_like", "ones_like", "full_like", "rand_like",
    "randn_like", "from_numpy", "stack", "max", "min", "argmax", "argmin", "var", "std", "eq",
    "save", "load", "onnx",
]
NOT_LOADED_BY_THE_GRAPH_LAYER = ("aecore.models", "aecore.inspect", "aecore.data", "aecore.train",
                                 "aecore.cli", "aecore.viz", "aecore.functional", "aecore.nn")


def python(code, cwd=None):
    """Run `code` in a fresh interpreter; (returncode, stdout, stderr)."""
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                            text=True, timeout=120, cwd=cwd)
    return result.returncode, result.stdout, result.stderr


def test_the_graph_layer_loads_without_models_data_inspect_or_the_cli():
    code, out, err = python("""
        import json, sys
        import aecore.tensor
        print(json.dumps(sorted(m for m in sys.modules if m.startswith("aecore"))))
    """)
    assert code == 0, err
    loaded = json.loads(out)
    assert {"aecore", "aecore.tensor", "aecore.backend", "aecore.kernels.registry"} <= set(loaded)
    for module in NOT_LOADED_BY_THE_GRAPH_LAYER:
        assert not any(m == module or m.startswith(module + ".") for m in loaded), (module, loaded)


def test_every_public_name_resolves_and_is_listed():
    code, out, err = python(f"""
        import json, types
        import numpy as np
        import aecore.tensor, aecore.gradcheck     # the submodules named like the functions
        import aecore as ae
        names = {PUBLIC_NAMES!r}
        missing = [n for n in names if n not in dir(ae) or n not in ae.__all__]
        kinds = {{n: isinstance(getattr(ae, n), types.ModuleType) for n in names}}
        x = ae.tensor([[1.0, 2.0]], requires_grad=True)
        (x * x).sum().backward()
        ok = ae.gradcheck(lambda t: (t * t).sum(), [ae.tensor([[0.5, -1.5]], dtype=np.float64,
                                                                requires_grad=True)])
        with ae.use_tier("ref"), ae.profile(peak=False):
            ae.cat([x, x], axis=0)
        print(json.dumps(dict(missing=missing, kinds=kinds, grad=x.grad.tolist(), ok=bool(ok))))
    """)
    assert code == 0, err
    result = json.loads(out)
    assert result["missing"] == []
    modules = {"backend", "data", "functional", "inspect", "io", "kernels", "losses", "models", "nn",
               "onnx", "ops", "optim", "random", "settings"}
    assert {n for n, is_module in result["kinds"].items() if is_module} == modules
    assert result["grad"] == [[2.0, 4.0]] and result["ok"]


def test_the_names_are_the_objects_of_their_modules():
    import aecore as ae
    from aecore import gradcheck as gradcheck_function, tensor as tensor_function
    import aecore.inspect.profiler
    import aecore.kernels.registry
    import aecore.tensor
    assert ae.tensor is tensor_function is sys.modules["aecore.tensor"].tensor
    assert ae.gradcheck is gradcheck_function is sys.modules["aecore.gradcheck"].gradcheck
    assert ae.profile is aecore.inspect.profiler.profile
    assert ae.use_tier is aecore.kernels.registry.use_tier
    assert ae.nn is sys.modules["aecore.nn"]


def test_an_unknown_name_is_an_attribute_error():
    import aecore as ae
    try:
        ae.no_such_name
    except AttributeError as error:
        assert "no_such_name" in str(error)
    else:
        raise AssertionError("ae.no_such_name resolved")


def test_a_bare_source_tree_says_to_install_in_one_line():
    """At the repository root, without the install (whose finder maps kernels/ to aecore.kernels),
    `import aecore` ends in one line that says what to do, not in a circular-import riddle."""
    code, out, err = python("""
        import sys
        # drop the editable install's finder: what a fresh clone that was never installed has
        sys.meta_path[:] = [f for f in sys.meta_path
                            if not getattr(f, "__module__", "").startswith("__editable__")]
        sys.path[:] = [p for p in sys.path if p not in ("", ".")]
        sys.path.insert(0, ".")
        for name in [m for m in sys.modules if m == "aecore" or m.startswith("aecore.")]:
            del sys.modules[name]
        import numpy             # the dependencies are installed; only aecore is not
        import aecore
    """, cwd=REPO_ROOT)
    assert code != 0
    last = err.strip().splitlines()[-1]
    assert last.startswith("ImportError: cannot import aecore.kernels: "), err
    assert "pip install -e ." in last and "circular import" not in err, err
