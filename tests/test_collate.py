import torch

from pargs.datamodules.collate import PairCollator, SFTCollator


def test_pair_collator_stacks_chosen_then_rejected():
    batch = PairCollator(pad_id=0)(
        [
            {"id": "a", "prompt": [5, 6], "chosen": [7, 2], "rejected": [8, 9, 2]},
            {"id": "b", "prompt": [5], "chosen": [7, 7, 7, 2], "rejected": [2]},
        ]
    )
    assert batch["input_ids"].tolist() == [
        [5, 6, 7, 2, 0],
        [5, 7, 7, 7, 2],
        [5, 6, 8, 9, 2],
        [5, 2, 0, 0, 0],
    ]
    assert batch["prompt_len"].tolist() == [2, 1, 2, 1]
    assert batch["response_len"].tolist() == [2, 4, 3, 1]
    assert batch["attention_mask"].sum(1).tolist() == [4, 5, 5, 2]
    assert batch["ids"] == ["a", "b"]


def test_sft_collator_masks_prompt_and_padding():
    batch = SFTCollator(pad_id=0)([{"prompt": [5, 6], "response": [7, 2]}, {"prompt": [5], "response": [2]}])
    assert batch["labels"].tolist() == [[-100, -100, 7, 2], [-100, 2, -100, -100]]
    with_prompt = SFTCollator(pad_id=0, loss_on_prompt=True)([{"prompt": [5, 6], "response": [7, 2]}])
    assert torch.equal(with_prompt["labels"], torch.tensor([[5, 6, 7, 2]]))
