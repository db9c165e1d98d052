"""LightningDataModules: preference pairs, SFT sequences, prompts."""

from pargs.datamodules.preference import PreferenceDataModule
from pargs.datamodules.prompts import PromptDataModule
from pargs.datamodules.sft import SFTDataModule

__all__ = ["PreferenceDataModule", "PromptDataModule", "SFTDataModule"]
