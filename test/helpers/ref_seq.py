# Reference sequence models and layer cases for convkit's parity tests (torch 1.13).
#
# Builders (for tv_oracle.py's "builder" field, with PYTHONPATH=test/helpers):
#   ref_seq.recurrent_classifier(cell=..., ...)   <-> src/models/sequence.ts RecurrentClassifier
#   ref_seq.transformer_classifier(...)           <-> src/models/sequence.ts TransformerClassifier
# Layer cases (called from oracle.ts snippets): layer_case(I, O, spec) builds an nn.LSTM / GRU /
# RNN / TransformerEncoder / MultiheadAttention from spec, runs I's input (and masks) through it,
# backpropagates sum(out_i * g_i) with I's g_i, and fills O with the state dict ('p.<key>'),
# the outputs ('out.<i>') and the gradients ('grad.x', 'grad.p.<key>').
import torch
import torch.nn as nn


def _prepare(x, vocab_size, padding_idx, in_features):
    """Token ids [N, T] (with a padding mask) or features [N, T, F] / [N, 1, T, F]."""
    if vocab_size is not None:
        valid = None if padding_idx is None else x != padding_idx
        return x, valid
    if x.dim() == 4 and x.size(1) == 1:
        x = x.squeeze(1)
    assert x.dim() == 3 and x.size(2) == in_features, x.shape
    return x, None


def _lengths(valid, n, t):
    if valid is None:
        return torch.full((n,), t, dtype=torch.long)
    return valid.sum(1).clamp(min=1)


def _mean_valid(h, valid):
    if valid is None:
        return h.mean(1)
    w = valid.to(h.dtype)
    return (h * w.unsqueeze(-1)).sum(1) / w.sum(1, keepdim=True).clamp(min=1)


def _last_valid(h, valid):
    n, t, c = h.shape
    idx = (_lengths(valid, n, t) - 1).view(n, 1, 1).expand(n, 1, c)
    return h.gather(1, idx).squeeze(1)


class RecurrentClassifier(nn.Module):
    def __init__(self, cell="lstm", num_classes=10, in_features=28, vocab_size=None, padding_idx=None,
                 embed_dim=128, hidden_size=128, num_layers=1, bidirectional=False, dropout=0.0,
                 drop_rate=0.0, pooling="last"):
        super().__init__()
        self.vocab_size, self.padding_idx, self.in_features = vocab_size, padding_idx, in_features
        self.hidden_size, self.pooling, self.bidirectional = hidden_size, pooling, bidirectional
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=padding_idx) if vocab_size else None
        feat = embed_dim if vocab_size else in_features
        kw = dict(num_layers=num_layers, batch_first=True, dropout=dropout, bidirectional=bidirectional)
        if cell == "lstm":
            self.rnn = nn.LSTM(feat, hidden_size, **kw)
        elif cell == "gru":
            self.rnn = nn.GRU(feat, hidden_size, **kw)
        else:
            self.rnn = nn.RNN(feat, hidden_size, nonlinearity="relu" if cell == "rnn_relu" else "tanh", **kw)
        self.dropout = nn.Dropout(drop_rate)
        self.head = nn.Linear(hidden_size * (2 if bidirectional else 1), num_classes)

    def forward(self, x):
        x, valid = _prepare(x, self.vocab_size, self.padding_idx, self.in_features)
        seq = self.embed(x) if self.embed is not None else x
        out, _ = self.rnn(seq)
        if self.pooling == "mean":
            feat = _mean_valid(out, valid)
        else:
            n, t, _ = out.shape
            H = self.hidden_size
            idx = (_lengths(valid, n, t) - 1).view(n, 1, 1).expand(n, 1, H)
            feat = out[:, :, :H].gather(1, idx).squeeze(1)
            if self.bidirectional:
                feat = torch.cat([feat, out[:, 0, H:]], 1)
        return self.head(self.dropout(feat))


class TransformerClassifier(nn.Module):
    def __init__(self, num_classes=10, in_features=28, vocab_size=None, padding_idx=None, d_model=64, nhead=4,
                 num_layers=2, dim_feedforward=None, dropout=0.1, activation="gelu", norm_first=True, max_len=512,
                 drop_rate=0.0, pooling="mean"):
        super().__init__()
        self.vocab_size, self.padding_idx, self.in_features = vocab_size, padding_idx, in_features
        self.pooling = pooling
        self.pos_embed = nn.Parameter(torch.zeros(1, max_len, d_model))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.embed = nn.Embedding(vocab_size, d_model, padding_idx=padding_idx) if vocab_size else nn.Linear(in_features, d_model)
        self.pos_drop = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward or 2 * d_model, dropout, activation,
                                           batch_first=True, norm_first=norm_first)
        # no nested tensors: padded steps are computed, as in training, rather than zeroed
        self.encoder = nn.TransformerEncoder(layer, num_layers, norm=nn.LayerNorm(d_model) if norm_first else None,
                                             enable_nested_tensor=False)
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(d_model, num_classes)

    def forward(self, x):
        x, valid = _prepare(x, self.vocab_size, self.padding_idx, self.in_features)
        t = x.size(1)
        h = self.pos_drop(self.embed(x) + self.pos_embed[:, :t])
        pad = None if valid is None else valid.logical_not()
        h = self.encoder(h, src_key_padding_mask=pad)
        feat = _mean_valid(h, valid) if self.pooling == "mean" else _last_valid(h, valid)
        return self.head(self.head_drop(feat))


class TokenInput(nn.Module):
    """Wraps a classifier whose oracle input must be token ids: tv_oracle feeds randn, which this
    maps deterministically to ids in [0, vocab) and pads the tail of every other sequence."""

    def __init__(self, model, vocab_size, padding_idx):
        super().__init__()
        self.model, self.vocab, self.pad = model, vocab_size, padding_idx

    def forward(self, x):
        return self.model(token_ids(x, self.vocab, self.pad))

    def state_dict(self, *a, **k):
        return self.model.state_dict(*a, **k)

    def parameters(self, *a, **k):
        return self.model.parameters(*a, **k)


def token_ids(x, vocab, pad):
    """randn [N, T] -> ids in [0, vocab); rows 1, 3, ... lose their last (row_index + 1) steps to padding."""
    ids = (x.abs() * 1000).long() % vocab
    if pad is not None:
        ids[ids == pad] = (pad + 1) % vocab
        for i in range(1, ids.size(0), 2):
            ids[i, ids.size(1) - (i + 1):] = pad
    return ids


def recurrent_classifier(**kw):
    tokens = kw.pop("token_input", False)
    m = RecurrentClassifier(**kw)
    return TokenInput(m, kw["vocab_size"], kw.get("padding_idx")) if tokens else m


def transformer_classifier(**kw):
    tokens = kw.pop("token_input", False)
    m = TransformerClassifier(**kw)
    return TokenInput(m, kw["vocab_size"], kw.get("padding_idx")) if tokens else m


# ---- layer cases -------------------------------------------------------------------------------

def _build_layer(spec):
    kind, kw = spec["kind"], dict(spec.get("kwargs", {}))
    if kind in ("LSTM", "GRU", "RNN"):
        return getattr(nn, kind)(**kw)
    if kind == "MultiheadAttention":
        return nn.MultiheadAttention(**kw)
    if kind == "TransformerEncoder":
        layer = nn.TransformerEncoderLayer(**kw)
        norm = nn.LayerNorm(kw["d_model"], eps=kw.get("layer_norm_eps", 1e-5)) if spec.get("final_norm") else None
        return nn.TransformerEncoder(layer, spec["num_layers"], norm=norm, enable_nested_tensor=False)
    raise ValueError("unknown layer kind " + kind)


def _randomize(m, seed):
    # break PyTorch's identical init across cloned layers and zero biases, so names cannot cross
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in m.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)


def _flat(v, acc):
    if isinstance(v, (list, tuple)):
        for e in v:
            _flat(e, acc)
    elif v is not None:
        acc.append(v)
    return acc


def x_floating(t):
    return t.is_floating_point()


def layer_case(I, O, spec):
    torch.set_num_threads(2)
    torch.manual_seed(spec.get("seed", 0))
    m = _build_layer(spec)
    if spec.get("randomize", True):
        _randomize(m, spec.get("seed", 0) + 7)
    m.train(spec.get("train", False))
    for k, v in m.state_dict().items():
        O["p." + k] = v.clone()
    x = I["x"].clone().requires_grad_(x_floating(I["x"]))
    kind = spec["kind"]
    torch.manual_seed(spec.get("seed", 0) + 1)  # the JS side reseeds the same way: dropout masks agree
    if kind in ("LSTM", "GRU", "RNN"):
        hx = None
        if "h0" in I:
            hx = (I["h0"], I["c0"]) if kind == "LSTM" else I["h0"]
        out = m(x, hx)
    elif kind == "MultiheadAttention":
        kv = x if spec.get("self", True) else I["kv"]
        out = m(x, kv, kv, key_padding_mask=I.get("kpm"), attn_mask=I.get("attn_mask"),
                need_weights=spec.get("need_weights", True), average_attn_weights=spec.get("average", True))
    else:
        out = m(x, mask=I.get("mask"), src_key_padding_mask=I.get("kpm"))
    outs = _flat(out, [])
    loss = 0
    for i, o in enumerate(outs):
        O["out.%d" % i] = o
        loss = loss + (o * I["g%d" % i]).sum()
    loss.backward()
    if x.grad is not None:
        O["grad.x"] = x.grad
    for k, p in m.named_parameters():
        if p.grad is not None:
            O["grad.p." + k] = p.grad
