"""What every personalization method shares: the concept's data and prompts, class images for prior
preservation, the loss module, previews, and `train_concept`, the one training function each method's trainer
calls with a `ConceptPlan` of what the method contributes, and `train_subject` for the methods that adapt
the UNet on DreamBooth's subject prompts; several concepts in one run (`Concept`), and SVDiff's Cut-Mix-Unmix
(`cutmix`, `unmix`)."""

from .class_images import class_images
from .cutmix import MIX_TEMPLATES, CutMixUnmix, cut_mix, mix_prompts, subject_sides
from .data import SUBJECT_TEMPLATES, ConceptDataset, fill
from .loss import ConceptTrainer, Unmix
from .multi import Concept
from .preview_sampler import concept_sampler
from .prompts import PromptSource
from .run import ConceptPlan, ConceptRun, concept_run, default_output_dir, train_concept
from .subject import DEFAULT_TOKEN, train_subject
from .unmix import UnmixAttention, unmix_penalty

__all__ = [
    "DEFAULT_TOKEN",
    "MIX_TEMPLATES",
    "SUBJECT_TEMPLATES",
    "Concept",
    "ConceptDataset",
    "ConceptPlan",
    "ConceptRun",
    "ConceptTrainer",
    "CutMixUnmix",
    "PromptSource",
    "class_images",
    "concept_run",
    "concept_sampler",
    "cut_mix",
    "default_output_dir",
    "fill",
    "mix_prompts",
    "subject_sides",
    "train_concept",
    "train_subject",
    "Unmix",
    "UnmixAttention",
    "unmix_penalty",
]
