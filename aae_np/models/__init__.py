"""The models: the shared network-set base, the AAE, the paper's variants, priors, model files."""

from aae_np.models.aae import AAE, AAEConfig
from aae_np.models.checkpoint import model_kind
from aae_np.models.load import load_model
from aae_np.models.network_set import NetworkSet, Phase
from aae_np.models.variants import VARIANTS, VariantAAE, VariantConfig

__all__ = ["AAE", "AAEConfig", "VariantAAE", "VariantConfig", "VARIANTS", "NetworkSet", "Phase",
           "load_model", "model_kind"]
