"""DAE: train any AE or CAE on corrupted inputs against the clean images.

    DAE(base="cae", noise="gaussian", noise_level=0.5, **base options)
    DAE(base=AE(...))                        # or wrap a model you built

loss(x) corrupts x afresh (aecore.random) and returns the base model's loss of the noisy input
against the clean x (with the base's sparse / contractive penalties, taken at the noisy input).
encode / decode / forward / reconstruct act on what they are given (no corruption): to denoise,
call `reconstruct(noisy)`. `evaluation_terms` (what `evaluate` reports) corrupts with the seeded
generator and gives the base's image terms against the clean target (per-pixel BCE and MSE; MSE
only for output='linear') and PSNR of the noisy input and of the reconstruction against the
clean image. The loss options (reconstruction, output, reduction) are the base model's.
"""

from ..tensor import Tensor, no_grad
from .base import Autoencoder, ModelConfigError, psnr_array, to_numpy
from .corruption import corrupt, normalize_noise

BASES = ("ae", "cae")


class DAE(Autoencoder):
    kind = "dae"
    corrupts_input = True    # corrupt(x): the noisy inputs it is trained on (pictures show them)

    def __init__(self, base="ae", noise="gaussian", noise_level=None, occlusion="block",
                 input_shape=None, **base_options):
        super().__init__()
        from .build import MODELS, from_config
        if isinstance(base, Autoencoder):
            if base.kind not in BASES:
                raise ModelConfigError(f"base must be one of {', '.join(BASES)} (or such a "
                                       f"model); got a {type(base).__name__}")
            if base_options:
                raise ModelConfigError(f"options {sorted(base_options)} cannot be given with a "
                                       "base model instance")
            model = base
        elif isinstance(base, dict):
            if base.get("kind") not in BASES:
                raise ModelConfigError(f"base must be one of {', '.join(BASES)}; got a config of "
                                       f"kind {base.get('kind')!r}")
            model = from_config(dict(base, **base_options))
        else:
            if base not in BASES:
                raise ModelConfigError(f"base must be one of {', '.join(BASES)}; got {base!r}")
            if input_shape is not None:
                base_options["input_shape"] = input_shape
            model = MODELS[base](**base_options)
        if input_shape is not None and tuple(input_shape) != tuple(model.input_shape):
            raise ModelConfigError(f"input_shape {tuple(input_shape)} differs from the base "
                                   f"model's {tuple(model.input_shape)}")
        self.noise, self.noise_level, self.occlusion = normalize_noise(noise, noise_level, occlusion)
        self.base = model
        self.input_shape = model.input_shape
        self.latent_dim = model.latent_dim
        self.config = dict(kind=self.kind, base=model.config, noise=self.noise,
                           noise_level=self.noise_level, occlusion=self.occlusion)

    @property
    def output(self):
        """What decode emits: the base model's output option."""
        return self.base.output

    @property
    def reconstruction(self):
        """The base model's reconstruction loss option."""
        return self.base.reconstruction

    @property
    def reduction(self):
        """The base model's reduction option."""
        return self.base.reduction

    def corrupt(self, x):
        """A corrupted copy of x (NumPy array or Tensor in, the same type out)."""
        return corrupt(x, self.noise, self.noise_level, self.occlusion)

    def noisy_and_clean(self, x):
        """(noisy, clean) Tensors on the model's device."""
        clean = self.as_input(x)
        return Tensor(self.corrupt(clean.data), _copy=False), clean

    def encode(self, x):
        return self.base.encode(x)

    def decode(self, z):
        return self.base.decode(z)

    def code(self, x):
        return self.base.code(x)

    def loss(self, x, target=None):
        clean = self.as_input(x) if target is None else self.as_input(target, "target")
        noisy = Tensor(self.corrupt(self.as_input(x).data), _copy=False)
        return self.base.loss(noisy, target=clean)

    def evaluation_terms(self, x):
        noisy, clean = self.noisy_and_clean(x)
        with no_grad():
            outputs = self.base.forward(noisy)
        denoised = to_numpy(self.to_images(outputs))
        clean_host, noisy_host = to_numpy(clean), to_numpy(noisy)
        return dict(self.base.image_terms(outputs, clean),
                    psnr_noisy=psnr_array(noisy_host, clean_host),
                    psnr_denoised=psnr_array(denoised, clean_host))

    def extra_repr(self):
        return f"noise={self.noise!r}, noise_level={self.noise_level}, occlusion={self.occlusion!r}"
