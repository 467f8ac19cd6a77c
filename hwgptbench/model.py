"""The one GPT of hwgptbench (docs/PROTOCOLS.md section 2), used for profiling, the supernet and as the
ground truth of the cost model.

Decoder-only GPT-2 family: token embedding (no absolute positions), L pre-LayerNorm blocks with a
parallel residual ``x + attn(ln1(x)) + mlp(ln2(x))``, final LayerNorm, LM head tied to the
embedding. Attention has h_i heads of fixed size 64 with rotary embedding on the first 32 dims of
each head; the MLP is Linear(E, r_i*E) -> exact GELU -> Linear(r_i*E, E).

Every weight is allocated at its largest size and used through leading slices, so the same module
is a standalone model (the active sub-network is the whole model and the slices are the full,
contiguous tensors) and a weight-sharing supernet (``set_sub_network`` selects the first L blocks
and the leading slices of docs/PROTOCOLS.md section 6). Parameters are created directly on the target
device and dtype and initialised there once.

Incremental decoding: a `KVCache` holds the keys and values of the active sub-network's layers;
``model(idx, cache)`` continues the cached sequence (rotary positions start at ``cache.pos``), and
``next_token``/``generate`` decode greedily one token at a time, as a served model does.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .cost import HEAD_SIZE, ROTARY_DIMS
from .space import Arch, as_arch, get_space
from .validation import check_int

__all__ = ["GPT", "KVCache"]


class SlicedLinear(nn.Module):
    """Linear layer whose forward uses the leading ``[:out, :in]`` block of its weight."""

    def __init__(self, in_features, out_features, bias, device, dtype):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_features, in_features, device=device, dtype=dtype))
        self.bias = nn.Parameter(torch.empty(out_features, device=device, dtype=dtype)) if bias else None
        self.active = (out_features, in_features)

    def forward(self, x, weight=None):
        out, inp = self.active
        w = self.weight[:out, :inp] if weight is None else weight
        b = self.bias[:out] if self.bias is not None and self.use_bias else None
        return F.linear(x, w, b)

    use_bias = True


class SlicedLayerNorm(nn.Module):
    def __init__(self, dim, device, dtype):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(dim, device=device, dtype=dtype))
        self.bias = nn.Parameter(torch.empty(dim, device=device, dtype=dtype))
        self.active = dim

    def forward(self, x):
        d = self.active
        return F.layer_norm(x, (d,), self.weight[:d], self.bias[:d], eps=1e-5)


def rotary_tables(seq, device, base=10000.0):
    """cos/sin tables (seq, ROTARY_DIMS/2) in float32 for rotate-half rotary embedding."""
    inv = 1.0 / base ** (torch.arange(0, ROTARY_DIMS, 2, device=device, dtype=torch.float32) / ROTARY_DIMS)
    t = torch.arange(seq, device=device, dtype=torch.float32)
    freqs = torch.outer(t, inv)
    return freqs.cos(), freqs.sin()


def apply_rotary(x, cos, sin):
    """Rotate the first ROTARY_DIMS dims of each head of x (B, h, T, 64); pass the rest through."""
    half = ROTARY_DIMS // 2
    x1, x2, rest = x[..., :half], x[..., half:ROTARY_DIMS], x[..., ROTARY_DIMS:]
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin, rest), dim=-1)


class Attention(nn.Module):
    def __init__(self, embed_dim, n_head, bias, device, dtype):
        super().__init__()
        self.max_head = n_head
        self.qkv = SlicedLinear(embed_dim, 3 * HEAD_SIZE * n_head, bias, device, dtype)
        self.proj = SlicedLinear(HEAD_SIZE * n_head, embed_dim, bias, device, dtype)
        self.n_head = n_head

    def set_active(self, embed_dim, n_head):
        self.n_head = n_head
        self.qkv.active = (3 * HEAD_SIZE * n_head, embed_dim)
        self.proj.active = (embed_dim, HEAD_SIZE * n_head)

    def qkv_weight(self):
        """Rows of the first n_head heads of q, k and v (a view when all heads are active)."""
        out, inp = self.qkv.active
        if self.n_head == self.max_head:
            return self.qkv.weight[:, :inp]
        w = self.qkv.weight.view(3, HEAD_SIZE * self.max_head, -1)[:, :HEAD_SIZE * self.n_head, :inp]
        return w.reshape(out, inp)

    def qkv_bias(self):
        if self.qkv.bias is None or not self.qkv.use_bias:
            return None
        return self.qkv.bias.view(3, -1)[:, :HEAD_SIZE * self.n_head].reshape(-1)

    def forward(self, x, cos, sin, cache=None, layer=0):
        """Causal self-attention of x (B, T, E); cos/sin start at x's first position. With a cache,
        x continues the cached sequence: its keys and values are stored at cache.pos.. and its
        queries attend to every cached position up to their own."""
        B, T, _ = x.shape
        h = self.n_head
        qkv = F.linear(x, self.qkv_weight(), self.qkv_bias())
        q, k, v = qkv.view(B, T, 3, h, HEAD_SIZE).permute(2, 0, 3, 1, 4).unbind(0)
        q, k = apply_rotary(q, cos[:T], sin[:T]), apply_rotary(k, cos[:T], sin[:T])
        mask, causal = None, True
        if cache is not None:
            pos = cache.pos
            k, v = cache.update(layer, k, v)      # every cached key and value, these included
            if pos > 0:                           # queries at pos..pos+T-1: causal with an offset
                causal = False
                if T > 1:
                    mask = torch.ones(T, pos + T, dtype=torch.bool, device=x.device).tril(pos)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)
        y = y.transpose(1, 2).reshape(B, T, h * HEAD_SIZE)
        return self.proj(y)


class MLP(nn.Module):
    def __init__(self, embed_dim, hidden, bias, device, dtype):
        super().__init__()
        self.fc = SlicedLinear(embed_dim, hidden, bias, device, dtype)
        self.proj = SlicedLinear(hidden, embed_dim, bias, device, dtype)

    def set_active(self, embed_dim, hidden):
        self.fc.active = (hidden, embed_dim)
        self.proj.active = (embed_dim, hidden)

    def forward(self, x):
        return self.proj(F.gelu(self.fc(x)))


class Block(nn.Module):
    def __init__(self, embed_dim, mlp_ratio, n_head, bias, device, dtype):
        super().__init__()
        self.ln1 = SlicedLayerNorm(embed_dim, device, dtype)
        self.ln2 = SlicedLayerNorm(embed_dim, device, dtype)
        self.attn = Attention(embed_dim, n_head, bias, device, dtype)
        self.mlp = MLP(embed_dim, mlp_ratio * embed_dim, bias, device, dtype)

    def set_active(self, embed_dim, mlp_ratio, n_head, bias):
        self.ln1.active = self.ln2.active = embed_dim
        self.attn.set_active(embed_dim, n_head)
        self.mlp.set_active(embed_dim, mlp_ratio * embed_dim)
        for lin in (self.attn.qkv, self.attn.proj, self.mlp.fc, self.mlp.proj):
            lin.use_bias = bias

    def forward(self, x, cos, sin, cache=None, layer=0):
        return x + self.attn(self.ln1(x), cos, sin, cache, layer) + self.mlp(self.ln2(x))


class KVCache:
    """Keys and values of the active sub-network's layers, preallocated for `max_len` positions.

    Layer i holds keys and values of shape (batch, h_i, max_len, 64) (heads differ per layer);
    the first `pos` positions are filled. A cache belongs to the architecture that was active when
    it was made: the model refuses it after `set_sub_network` selects another.
    """

    def __init__(self, model: "GPT", batch: int, max_len: int):
        batch, max_len = check_int(batch, "batch", 1), check_int(max_len, "max_len", 1, get_space(model.active.space).block_size)
        self.arch, self.batch, self.max_len, self.pos = model.active, batch, max_len, 0
        w = model.wte
        # never read before written (attention sees only [:pos]), so empty, not zeros: no pages touched
        self.k = [torch.empty(batch, h, max_len, HEAD_SIZE, device=w.device, dtype=w.dtype)
                  for h in self.arch.n_head]
        self.v = [torch.empty_like(k) for k in self.k]

    def update(self, layer: int, k, v):
        """Store k, v (B, h, T, 64) at positions pos..pos+T-1; return the keys and values of
        positions 0..pos+T-1 (views). The model advances `pos` once all layers are done."""
        T = k.shape[2]
        self.k[layer][:, :, self.pos:self.pos + T] = k
        self.v[layer][:, :, self.pos:self.pos + T] = v
        return self.k[layer][:, :, :self.pos + T], self.v[layer][:, :, :self.pos + T]

    def reset(self) -> None:
        """Forget the cached sequence (the memory is kept for the next one)."""
        self.pos = 0

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.k + self.v)


class GPT(nn.Module):
    """GPT of one architecture; as a supernet, any architecture that fits inside it can be active.

    >>> model = GPT(arch, device="cuda", dtype=torch.bfloat16)   # doctest: +SKIP
    >>> logits = model(idx)                                      # (B, T, 50304)
    """

    def __init__(self, arch: Arch, device=None, dtype=None, init: bool = True):
        super().__init__()
        arch = as_arch(arch)
        self.arch = arch
        E = arch.embed_dim
        sp = get_space(arch.space)
        self.block_size = sp.block_size            # the space's context and (padded) vocabulary
        self.wte = nn.Parameter(torch.empty(sp.vocab_padded, E, device=device, dtype=dtype))
        self.blocks = nn.ModuleList(
            Block(E, r, h, arch.bias, device, dtype) for r, h in zip(arch.mlp_ratio, arch.n_head))
        self.ln_f = SlicedLayerNorm(E, device, dtype)
        cos, sin = rotary_tables(self.block_size, self.wte.device)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.active = arch
        if init:
            self.init_weights()

    @torch.no_grad()
    def init_weights(self, std: float = 0.02, generator=None):
        """GPT-2 init: N(0, 0.02), residual projections scaled by 1/sqrt(2L), zero biases."""
        proj_std = std / math.sqrt(2 * len(self.blocks))
        self.wte.normal_(0.0, std, generator=generator)
        for blk in self.blocks:
            for lin, s in ((blk.attn.qkv, std), (blk.attn.proj, proj_std),
                           (blk.mlp.fc, std), (blk.mlp.proj, proj_std)):
                lin.weight.normal_(0.0, s, generator=generator)
                if lin.bias is not None:
                    lin.bias.zero_()
        for ln in [self.ln_f] + [m for b in self.blocks for m in (b.ln1, b.ln2)]:
            ln.weight.fill_(1.0)
            ln.bias.zero_()

    def set_sub_network(self, arch) -> None:
        """Make `arch` active: the first L blocks and leading slices of every weight."""
        arch = as_arch(arch, self.arch.space)
        big = self.arch
        ok = (arch.embed_dim <= big.embed_dim and arch.n_layer <= big.n_layer
              and (big.bias or not arch.bias)
              and all(r * arch.embed_dim <= R * big.embed_dim and h <= H
                      for r, h, R, H in zip(arch.mlp_ratio, arch.n_head, big.mlp_ratio, big.n_head)))
        if not ok:
            raise ValueError(f"arch: {arch.id} does not fit inside this model ({big.id})")
        for blk, r, h in zip(self.blocks, arch.mlp_ratio, arch.n_head):
            blk.set_active(arch.embed_dim, r, h, arch.bias)
        self.ln_f.active = arch.embed_dim
        self.active = arch

    def forward(self, idx, cache: KVCache | None = None):
        """Logits (B, T, 50304) of every position for token ids idx (B, T).

        With a cache, idx continues the cached sequence: its tokens take positions cache.pos..,
        their keys and values are appended, and cache.pos advances by T.
        """
        return F.linear(self._hidden(idx, cache), self.wte[:, :self.active.embed_dim])

    def next_token(self, idx, cache: KVCache):
        """Greedy next token (B, 1) after idx, continuing the cache: a prefill when idx is the
        prompt, one decode step when idx is the last generated token. Only the last position's
        logits are computed."""
        x = self._hidden(idx, cache)[:, -1:]
        return F.linear(x, self.wte[:, :self.active.embed_dim]).argmax(dim=-1)

    @torch.inference_mode()
    def generate(self, idx, n_new: int, cache: KVCache | None = None):
        """Greedy continuation (B, n_new) of the prompt idx (B, T), one token at a time against a
        KV cache (made here for T + n_new - 1 positions unless given)."""
        n_new = check_int(n_new, "n_new", 1)
        if cache is None:
            cache = KVCache(self, idx.shape[0], idx.shape[1] + n_new - 1)
        out = [self.next_token(idx, cache)]
        for _ in range(n_new - 1):
            out.append(self.next_token(out[-1], cache))
        return torch.cat(out, dim=1)

    def _hidden(self, idx, cache):
        """Final-LayerNorm output (B, T, E) of the active sub-network."""
        a = self.active
        B, T = idx.shape
        pos = 0 if cache is None else cache.pos
        if pos + T > self.block_size:
            raise ValueError(f"idx: sequence length {pos + T} exceeds the context {self.block_size}")
        if cache is not None:
            if cache.arch != a:
                raise ValueError(f"cache: made for {cache.arch.id}, but {a.id} is active; make a new KVCache")
            if B != cache.batch or pos + T > cache.max_len:
                raise ValueError(f"cache: holds batch {cache.batch} and {cache.max_len} positions; got "
                                 f"batch {B} and positions {pos}..{pos + T - 1}")
        x = F.embedding(idx, self.wte[:, :a.embed_dim])
        cos, sin = self.rope_cos[pos:], self.rope_sin[pos:]
        for i, blk in enumerate(self.blocks[:a.n_layer]):
            x = blk(x, cos, sin, cache, i)
        if cache is not None:
            cache.pos += T
        return self.ln_f(x)
