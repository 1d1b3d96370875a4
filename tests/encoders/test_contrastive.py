import torch
from torch import nn

from clipguard.encoders.contrastive import MoCo, clip_loss, info_nce, koleo_loss


class _Enc(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 3)

    def forward(self, x):
        return nn.functional.normalize(self.lin(x), dim=-1)


def _unit(n: int, d: int, seed: int = 0) -> torch.Tensor:
    return nn.functional.normalize(torch.randn(n, d, generator=torch.Generator().manual_seed(seed)), dim=1)


def test_key_encoder_moves_by_momentum():
    moco = MoCo(_Enc(), dim=3, queue_size=5, momentum=0.9, temperature=0.1)
    assert all(not p.requires_grad for p in moco.key.parameters())
    with torch.no_grad():
        for p in moco.query.parameters():
            p.add_(1.0)
    before = [p.clone() for p in moco.key.parameters()]
    query = [p.clone() for p in moco.query.parameters()]
    moco.momentum_update()
    for k0, q, k1 in zip(before, query, moco.key.parameters()):
        assert torch.allclose(k1, 0.9 * k0 + 0.1 * q)
    # the query encoder is untouched
    for q, q1 in zip(query, moco.query.parameters()):
        assert torch.equal(q, q1)


def test_queue_is_fifo_and_wraps():
    moco = MoCo(_Enc(), dim=3, queue_size=5, momentum=0.9, temperature=0.1)
    a, b = _unit(3, 3, 1), _unit(3, 3, 2)
    moco.enqueue(a)
    assert int(moco.queue_ptr) == 3
    assert torch.equal(moco.queue[:3], a)
    moco.enqueue(b)  # 2 slots left, then wraps: the oldest keys (a[0], a[1]) are replaced
    assert int(moco.queue_ptr) == 1
    assert torch.equal(moco.queue[3:], b[:2])
    assert torch.equal(moco.queue[0], b[2])
    assert torch.equal(moco.queue[1:3], a[1:])
    big = _unit(7, 3, 3)
    moco.enqueue(big)
    assert torch.equal(moco.queue, big[-5:]) and int(moco.queue_ptr) == 0


def test_info_nce_prefers_matching_keys():
    q = _unit(8, 16, 0)
    queue = _unit(32, 16, 1)
    assert info_nce(q, q, queue, 0.1) < info_nce(q, _unit(8, 16, 2), queue, 0.1)


def test_clip_loss_symmetric_and_lower_when_aligned():
    a = _unit(6, 8, 0)
    b = nn.functional.normalize(a + 0.1 * _unit(6, 8, 1), dim=1)
    shuffled = b[torch.tensor([1, 2, 3, 4, 5, 0])]
    assert torch.allclose(clip_loss(a, b, 0.1), clip_loss(b, a, 0.1))
    assert clip_loss(a, b, 0.1) < clip_loss(a, shuffled, 0.1)


def test_clip_loss_mask_and_degenerate_batches():
    a, b = _unit(4, 8, 0), _unit(4, 8, 1)
    mask = torch.tensor([True, False, True, False])
    assert torch.allclose(clip_loss(a, b, 0.1, mask), clip_loss(a[mask], b[mask], 0.1))
    one = torch.tensor([True, False, False, False])
    a.requires_grad_(True)
    loss = clip_loss(a, b, 0.1, one)
    assert loss.item() == 0.0
    loss.backward()  # still part of the graph


def test_koleo_is_lower_when_embeddings_spread():
    g = torch.Generator().manual_seed(0)
    spread = nn.functional.normalize(torch.randn(16, 8, generator=g), dim=1)
    clumped = nn.functional.normalize(torch.ones(16, 8) + 0.01 * torch.randn(16, 8, generator=g), dim=1)
    assert koleo_loss(spread) < koleo_loss(clumped)
    x = spread.clone().requires_grad_(True)
    koleo_loss(x).backward()
    assert torch.isfinite(x.grad).all()
    assert koleo_loss(spread[:1]).item() == 0.0
