import torch

from pargs.decoding.noise import child_seeds, sample_from_scores, stable_seed, uniform_noise


def test_stable_seed_is_a_fixed_function_of_its_parts():
    assert stable_seed(0, "p1", "pargs", 3) == stable_seed(0, "p1", "pargs", 3)
    assert stable_seed(0, "p1", "pargs", 3) != stable_seed(0, "p1", "pargs", 4)
    assert 0 <= stable_seed("x") < 2**62


def test_uniform_noise_is_uniform_and_keyed_by_seed_step_token():
    seeds = torch.tensor([stable_seed(i) for i in range(8)])
    tokens = torch.arange(5000).expand(8, -1)
    u = uniform_noise(seeds, 7, tokens)
    assert ((u > 0) & (u < 1)).all()
    # each decile holds ~10 % of 40,000 draws (binomial sd ~ 60)
    counts = torch.histc(u.float(), bins=10, min=0, max=1)
    assert (counts - 4000).abs().max() < 300
    assert torch.equal(uniform_noise(seeds[2:3], 7, tokens[:1]), u[2:3])  # independent of the batch
    assert not torch.equal(uniform_noise(seeds, 8, tokens), u)


def test_gumbel_max_sampling_frequencies():
    scores = torch.log(torch.tensor([[0.5, 0.3, 0.2, 0.0]]))
    n = 20000
    seeds = torch.tensor([stable_seed("g", i) for i in range(n)])
    picks = sample_from_scores(scores.expand(n, -1), seeds, 0, torch.arange(4).expand(n, -1))
    freq = torch.bincount(picks, minlength=4).float() / n
    assert torch.allclose(freq, torch.tensor([0.5, 0.3, 0.2, 0.0]), atol=0.015)


def test_child_seeds_are_distinct():
    kids = child_seeds(torch.tensor([stable_seed(1), stable_seed(2)]), 50)
    assert kids.numel() == 100 and kids.unique().numel() == 100 and (kids >= 0).all()
