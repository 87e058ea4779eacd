"""seqbench's side of `arch: python`, run by the Python interpreter embedded in seqbench.

seqbench calls these functions; they load the user's layer, check it, and describe it. Anything
that goes wrong raises `LayerError` with a message naming the file, the class and what was
expected; the Rust side turns it into a configuration error or a failed record.
"""
import hashlib
import importlib
import importlib.metadata
import importlib.util
import inspect
import json
import os
import site
import sys
import traceback


class LayerError(Exception):
    """A problem with the user's layer: a one-line summary for the user, and the traceback (if
    the user's code raised) for the log."""

    def __init__(self, summary, detail=""):
        super().__init__(summary)
        self.detail = detail


def _raised(what):
    """Inside `except`: the LayerError for `what` having raised the exception being handled."""
    error = sys.exc_info()[1]
    last = traceback.format_exception_only(type(error), error)[-1].strip()
    return LayerError(f"{what} raised {last}", traceback.format_exc())


def setup(prefix, libtorch_dir):
    """Puts the venv at `prefix` on sys.path and checks that its torch is the libtorch seqbench
    runs on: tensors cross between Rust and Python without copies only within one libtorch."""
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    packages = os.path.join(prefix, "lib", version, "site-packages")
    if prefix and os.path.isdir(packages):
        before = list(sys.path)
        site.addsitedir(packages)
        added = [p for p in sys.path if p not in before]
        sys.path[:] = added + before
        # torch.compile and Triton start subprocesses with sys.executable: the venv's Python,
        # not seqbench's binary.
        python = os.path.join(prefix, "bin", "python3")
        if os.path.exists(python):
            sys.executable = python
    try:
        import torch
    except ImportError as e:
        raise LayerError(f"the Python at {prefix or sys.prefix} cannot import torch ({e})") from None
    torch_lib = os.path.realpath(os.path.join(os.path.dirname(torch.__file__), "lib"))
    if libtorch_dir and torch_lib != os.path.realpath(libtorch_dir):
        raise LayerError(
            f"the venv's torch ({torch_lib}) is not the libtorch seqbench was built against "
            f"({libtorch_dir}); build seqbench with this venv's torch or run it with that venv"
        )
    return f"Python {sys.version.split()[0]}, torch {torch.__version__}"


def _load_module(module):
    if module.endswith(".py"):
        path = os.path.abspath(module)
        if not os.path.isfile(path):
            raise LayerError(f"module: no file {module} (looked for {path})")
        name = "seqbench_layer_" + hashlib.sha256(path.encode()).hexdigest()[:12]
        if name in sys.modules:
            return sys.modules[name]
        # Sibling files import as they would when the file is run as a script.
        folder = os.path.dirname(path)
        if folder not in sys.path:
            sys.path.insert(0, folder)
        spec = importlib.util.spec_from_file_location(name, path)
        loaded = importlib.util.module_from_spec(spec)
        sys.modules[name] = loaded
        try:
            spec.loader.exec_module(loaded)
        except BaseException:
            del sys.modules[name]
            raise _raised(f"importing {module}") from None
        return loaded
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        raise LayerError(
            f"module: cannot import `{module}` ({e}); give a path to a .py file or install the module in the venv"
        ) from None
    except BaseException:
        raise _raised(f"importing {module}") from None


def _load_class(module, cls):
    import torch

    loaded = _load_module(module)
    if not hasattr(loaded, cls):
        classes = sorted(n for n, v in vars(loaded).items() if inspect.isclass(v) and issubclass(v, torch.nn.Module))
        raise LayerError(f"{module} has no class `{cls}` (its nn.Module classes: {', '.join(classes) or 'none'})")
    klass = getattr(loaded, cls)
    if not (inspect.isclass(klass) and issubclass(klass, torch.nn.Module)):
        raise LayerError(f"{module}:{cls} is not a torch.nn.Module subclass")
    return klass


def _where(module, cls):
    return f"{module}:{cls}"


def build(module, cls, kwargs_json, shape_json, device):
    """One instance of the layer (or model), on `device`; `shape_json` holds what seqbench
    passes besides the kwargs (`d_model` for a layer; vocab_size, num_classes, seq_len for a model)."""
    klass = _load_class(module, cls)
    kwargs = json.loads(kwargs_json)
    kwargs.update(json.loads(shape_json))
    try:
        layer = klass(**kwargs)
    except BaseException:
        arguments = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        raise _raised(f"{_where(module, cls)}({arguments})") from None
    return layer.to(device)


def takes_mask(layer):
    try:
        return "mask" in inspect.signature(layer.forward).parameters
    except (TypeError, ValueError):
        return False


def parameters(layer):
    """(name, tensor) of every parameter, in registration order."""
    return [(name, p) for name, p in layer.named_parameters()]


def _source_files(module, klass):
    files = set()
    for obj in (sys.modules.get(klass.__module__), klass):
        try:
            files.add(os.path.abspath(inspect.getsourcefile(obj)))
        except (TypeError, OSError):
            pass
    return sorted(files)


def _package_version(klass):
    top = klass.__module__.split(".")[0]
    if top.startswith("seqbench_layer_"):
        return None
    try:
        return f"{top} {importlib.metadata.version(top)}"
    except importlib.metadata.PackageNotFoundError:
        return None


def _expect_output(y, shape, expected, where, what):
    import torch

    if not isinstance(y, torch.Tensor):
        raise LayerError(f"{where}.{what} returned {type(y).__name__}; expected a tensor of shape {expected}")
    if tuple(y.shape) != shape:
        raise LayerError(f"{where}.{what} returned shape {tuple(y.shape)}; expected {expected}")


def _probe(shape):
    """A tiny input, the same input with its last position changed, and the output shapes
    expected (sequence, one step) with their descriptions."""
    import torch

    if "vocab_size" in shape:
        vocab, classes = shape["vocab_size"], shape["num_classes"]
        x = torch.randint(vocab, (2, 6))
        changed = x.clone()
        changed[:, -1] = (changed[:, -1] + 1) % vocab
        out, step = (2, 6, classes), (2, classes)
        return x, changed, out, f"(batch, L, num_classes) = {out}", step, f"(batch, num_classes) = {step}"
    d_model = shape["d_model"]
    x = torch.randn(2, 6, d_model, requires_grad=True)
    changed = x.detach().clone()
    changed[:, -1] += 1.0
    out, step = (2, 6, d_model), (2, d_model)
    return x, changed, out, f"the input's shape {out}", step, f"(batch, d_model) = {step}"


def _call(where, what, fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except LayerError:
        raise
    except BaseException:
        raise _raised(f"{where}.{what}") from None


def check(module, cls, kwargs_json, shape_json, causal, padded, seed):
    """Imports the layer (or model), builds it, runs one tiny forward and backward (and a step if
    it has one), and describes it: a dict seqbench records and hashes into the job's identity."""
    import torch

    klass = _load_class(module, cls)
    # The check draws its own weights and input without moving the generator the job's model
    # is then initialised from.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _check(module, cls, klass, kwargs_json, json.loads(shape_json), causal, padded)


def describe(module, cls, kwargs_json, shape_json):
    """The description `check` gives, for a layer already checked: one instance is built (the
    generator left where it was) and nothing is run."""
    import torch

    klass = _load_class(module, cls)
    with torch.random.fork_rng(devices=[]):
        layer = build(module, cls, kwargs_json, shape_json, "cpu")
    return json.dumps(_description(module, klass, layer, kwargs_json))


def _description(module, klass, layer, kwargs_json):
    """What seqbench records of a layer and hashes into the job's identity."""
    digest = hashlib.sha256()
    files = _source_files(module, klass)
    for path in files:
        with open(path, "rb") as f:
            digest.update(f.read())
    digest.update(kwargs_json.encode())
    return {
        "source_sha256": digest.hexdigest()[:16],
        "files": files,
        "package": _package_version(klass),
        "takes_mask": takes_mask(layer),
        "has_step": callable(getattr(layer, "step", None)),
        "has_flops": callable(getattr(layer, "flops_per_token", None)),
    }


def _check(module, cls, klass, kwargs_json, shape, causal, padded):
    import torch

    where = _where(module, cls)
    layer = build(module, cls, kwargs_json, json.dumps(shape), "cpu")
    described = _description(module, klass, layer, kwargs_json)
    if padded and not described["takes_mask"]:
        raise LayerError(
            f"{where}.forward takes no `mask` argument, but this task pads its sequences: add "
            "`mask=None` (batch, L; 1 on real positions) to forward, or run it on a task without padding"
        )
    if not any(True for _ in layer.parameters()):
        raise LayerError(f"{where} has no parameters: nothing would train")
    x, changed, out_shape, out_text, step_shape, step_text = _probe(shape)
    y = _call(where, "forward", layer, x)
    _expect_output(y, out_shape, out_text, where, "forward")
    _call(where, "backward", y.square().mean().backward)
    if x.requires_grad and (x.grad is None or not torch.isfinite(x.grad).all()):
        raise LayerError(f"{where}: the gradient of its output with respect to its input is missing or not finite")
    if all(p.grad is None for p in layer.parameters()):
        raise LayerError(f"{where}: no gradient reached its parameters")
    # Evaluation mode from here: dropout would change outputs between two calls and pass for a
    # leak from the future.
    layer.eval()
    if causal:
        with torch.no_grad():
            leak = (layer(changed)[:, :-1] - layer(x.detach())[:, :-1]).abs().max().item()
        if leak > 1e-5 * max(1.0, y.abs().max().item()):
            raise LayerError(
                f"{where} is not causal: changing the last position changed earlier outputs by {leak:.3g}, "
                "and this task predicts each position from the ones before it"
            )
    if described["has_step"]:
        with torch.no_grad():
            out, state = _call(where, "step", layer.step, x.detach()[:, 0], None)
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != step_shape:
            raise LayerError(f"{where}.step(x, state) must return (y, state) with y shaped {step_text}")
    if described["has_flops"]:
        flops = _call(where, "flops_per_token", layer.flops_per_token, 64)
        if not isinstance(flops, (int, float)) or not flops >= 0:
            raise LayerError(f"{where}.flops_per_token(seq_len) must return a number ≥ 0, got {flops!r}")
    return json.dumps(described)


def forward(layer, x, mask, train):
    if layer.training != train:
        layer.train(train)
    y = layer(x, mask=mask) if mask is not None else layer(x)
    return y


def step(layer, x, state):
    return layer.step(x, state)


def flops_per_token(layer, seq_len):
    return float(layer.flops_per_token(seq_len))


def describe_error(error):
    """(a one-line summary, the traceback) of an exception that reached seqbench."""
    if isinstance(error, LayerError):
        return str(error), error.detail
    last = traceback.format_exception_only(type(error), error)[-1].strip()
    return last, "".join(traceback.format_exception(type(error), error, error.__traceback__))
