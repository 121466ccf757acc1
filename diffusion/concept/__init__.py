"""What every personalization method shares: the concept's data and prompts, class images for prior
preservation, the loss module, previews, and `train_concept`, the one training function each method's trainer
calls with a `ConceptPlan` of what the method contributes, and `train_subject` for the methods that adapt
the UNet on DreamBooth's subject prompts."""

from .class_images import class_images
from .data import SUBJECT_TEMPLATES, ConceptDataset, fill
from .loss import ConceptTrainer
from .preview_sampler import concept_sampler
from .prompts import PromptSource
from .run import ConceptPlan, ConceptRun, concept_run, default_output_dir, train_concept
from .subject import DEFAULT_TOKEN, train_subject

__all__ = [
    "DEFAULT_TOKEN",
    "SUBJECT_TEMPLATES",
    "ConceptDataset",
    "ConceptPlan",
    "ConceptRun",
    "ConceptTrainer",
    "PromptSource",
    "class_images",
    "concept_run",
    "concept_sampler",
    "default_output_dir",
    "fill",
    "train_concept",
    "train_subject",
]
