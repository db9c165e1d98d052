"""LightningDataModules: preference pairs, SFT sequences, prompts, scored rollouts."""

from pargs.datamodules.preference import PreferenceDataModule
from pargs.datamodules.prompts import PromptDataModule
from pargs.datamodules.rollouts import RolloutDataModule
from pargs.datamodules.sft import SFTDataModule

__all__ = ["PreferenceDataModule", "PromptDataModule", "RolloutDataModule", "SFTDataModule"]
