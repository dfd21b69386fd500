"""The RVC generator: RVC file layout at full size, and behaviour on tiny configs."""

from __future__ import annotations

import math

import pytest
import torch

from rvc.formats import parse_sample_rate
from rvc.models.commons import has_weight_norm
from rvc.models.synthesizer import CONFIG_KEYS, Synthesizer, config_list
from tests.conftest import compose, debug_config

# docs/formats.md §4 numbers: (spec_channels, segment frames, upsample_rates, upsample_kernel_sizes)
FULL = {
    32000: (513, 40, [10, 8, 2, 2], [20, 16, 4, 4]),
    40000: (1025, 32, [10, 10, 2, 2], [16, 16, 4, 4]),
    48000: (1025, 36, [12, 10, 2, 2], [24, 20, 4, 4]),
}


def full_config(sr: int) -> list:
    spec, seg, rates, kernels = FULL[sr]
    return [spec, seg, 192, 192, 768, 2, 6, 3, 0.0, "1", [3, 7, 11], [[1, 3, 5]] * 3,
            rates, 512, kernels, 109, 256, sr]  # fmt: skip


SPEC = debug_config()[0]  # the debug model's spectrogram bins (enc_q input)


def rvc_name(key: str) -> str:
    """Our parametrization names -> the weight_g / weight_v names in RVC files."""
    key = key.replace(".parametrizations.weight.original0", ".weight_g")
    return key.replace(".parametrizations.weight.original1", ".weight_v")


def _conv(layout: dict, name: str, out: int, inp: int, k: int, bias: bool = True) -> None:
    layout[f"{name}.weight"] = (out, inp, k)
    if bias:
        layout[f"{name}.bias"] = (out,)


def _wn_conv(layout: dict, name: str, out: int, inp: int, k: int, transposed: bool = False) -> None:
    # weight norm over dim 0: g has one value per output channel (input channel if transposed)
    layout[f"{name}.weight_g"] = (out if not transposed else inp, 1, 1)
    layout[f"{name}.weight_v"] = (out, inp, k) if not transposed else (inp, out, k)
    layout[f"{name}.bias"] = (out,)


def _wavenet(layout: dict, name: str, hidden: int, kernel: int, layers: int, gin: int) -> None:
    _wn_conv(layout, f"{name}.cond_layer", 2 * hidden * layers, gin, 1)
    for i in range(layers):
        _wn_conv(layout, f"{name}.in_layers.{i}", 2 * hidden, hidden, kernel)
        _wn_conv(
            layout,
            f"{name}.res_skip_layers.{i}",
            hidden if i == layers - 1 else 2 * hidden,
            hidden,
            1,
        )


def rvc_layout(sr: int, dim: int = 768, f0: bool = True) -> dict[str, tuple]:
    """Expected RVC generator state dict {name: shape}, written from docs/formats.md §3."""
    spec, _, rates, kernels = FULL[sr]
    h, inter, filt, gin = 192, 192, 768, 256
    lay: dict[str, tuple] = {"enc_p.emb_phone.weight": (h, dim), "enc_p.emb_phone.bias": (h,)}
    if f0:
        lay["enc_p.emb_pitch.weight"] = (256, h)
    for i in range(6):
        p = f"enc_p.encoder.attn_layers.{i}"
        for c in "qkvo":
            _conv(lay, f"{p}.conv_{c}", h, h, 1)
        lay[f"{p}.emb_rel_k"] = lay[f"{p}.emb_rel_v"] = (1, 21, 96)
        for n in (1, 2):
            lay[f"enc_p.encoder.norm_layers_{n}.{i}.gamma"] = (h,)
            lay[f"enc_p.encoder.norm_layers_{n}.{i}.beta"] = (h,)
        _conv(lay, f"enc_p.encoder.ffn_layers.{i}.conv_1", filt, h, 3)
        _conv(lay, f"enc_p.encoder.ffn_layers.{i}.conv_2", h, filt, 3)
    _conv(lay, "enc_p.proj", 2 * inter, h, 1)

    if f0:
        lay["dec.m_source.l_linear.weight"], lay["dec.m_source.l_linear.bias"] = (1, 1), (1,)
    _conv(lay, "dec.conv_pre", 512, inter, 7)
    for i, k in enumerate(kernels):
        cin, cout = 512 >> i, 512 >> (i + 1)
        _wn_conv(lay, f"dec.ups.{i}", cout, cin, k, transposed=True)
        if f0:
            stride = math.prod(rates[i + 1 :])
            _conv(lay, f"dec.noise_convs.{i}", cout, 1, 1 if stride == 1 else 2 * stride)
        for j, kr in enumerate((3, 7, 11)):
            for conv in ("convs1", "convs2"):
                for m in range(3):
                    _wn_conv(lay, f"dec.resblocks.{3 * i + j}.{conv}.{m}", cout, cout, kr)
    _conv(lay, "dec.conv_post", 1, 512 >> len(rates), 7, bias=False)
    _conv(lay, "dec.cond", 512, gin, 1)

    for f in (0, 2, 4, 6):
        _conv(lay, f"flow.flows.{f}.pre", h, inter // 2, 1)
        _wavenet(lay, f"flow.flows.{f}.enc", h, 5, 3, gin)
        _conv(lay, f"flow.flows.{f}.post", inter // 2, h, 1)
    _conv(lay, "enc_q.pre", h, spec, 1)
    _wavenet(lay, "enc_q.enc", h, 5, 16, gin)
    _conv(lay, "enc_q.proj", 2 * inter, h, 1)
    lay["emb_g.weight"] = (109, gin)
    return lay


def _shapes(model: torch.nn.Module) -> dict[str, tuple]:
    return {rvc_name(k): tuple(v.shape) for k, v in model.state_dict().items()}


@pytest.mark.parametrize("sr", [32000, 40000, 48000])
def test_full_size_layout_matches_rvc(sr):
    model = Synthesizer(*full_config(sr))
    assert _shapes(model) == rvc_layout(sr)
    if sr == 40000:  # docs/formats.md §3
        assert len(model.state_dict()) == 560
        outside_q = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("enc_q"))
        assert 27.4e6 < outside_q < 27.6e6
    assert model.hop_length == math.prod(FULL[sr][2]) and model.sample_rate == sr


@pytest.mark.parametrize(("dim", "f0"), [(256, True), (768, False)])
def test_full_size_v1_and_no_f0_layouts(dim, f0):
    model = Synthesizer(*full_config(40000), use_f0=f0, text_enc_hidden_dim=dim)
    assert _shapes(model) == rvc_layout(40000, dim=dim, f0=f0)


def _inputs(b: int, t: int, dim: int, seed: int, spec: int = SPEC):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(max(2, t // 2), t + 1, (b,), generator=g)
    lengths[0] = t  # the longest item fills the padded length, as a collate would
    phone = torch.randn(b, t, dim, generator=g)
    pitch = torch.randint(1, 256, (b, t), generator=g)
    pitchf = torch.rand(b, t, generator=g) * 300 + 80
    pitchf[:, : t // 4] = 0  # an unvoiced stretch
    y = torch.rand(b, spec, t, generator=g)
    sid = torch.randint(0, 4, (b,), generator=g)
    return phone, lengths, pitch, pitchf, y, sid


@pytest.mark.parametrize(("dim", "f0", "seed"), [(768, True, 0), (256, True, 1), (768, False, 2)])
def test_train_and_infer_shapes(dim, f0, seed):
    torch.manual_seed(seed)
    cfg = debug_config()
    model = Synthesizer(*cfg, use_f0=f0, text_enc_hidden_dim=dim)
    seg, inter = cfg[1], cfg[2]
    t = 12 + 5 * seed  # longer than the segment
    phone, lengths, pitch, pitchf, y, sid = _inputs(3, t, dim, seed)
    if not f0:
        pitch = pitchf = None
    out = model(phone, lengths, pitch, pitchf, y, lengths, sid)
    wav, ids, x_mask, y_mask, z, z_p, m_p, logs_p, m_q, logs_q = out
    assert out.kl_stats() == (z_p, logs_q, m_p, logs_p, y_mask)  # named, in kl_loss's order
    hop = model.hop_length
    assert wav.shape == (3, 1, seg * hop) and torch.isfinite(wav).all()
    # a start leaves a whole segment inside the item (items shorter than it start at 0)
    assert ids.shape == (3,) and bool((ids >= 0).all())
    assert bool((ids + seg <= lengths.clamp(min=seg)).all())
    for tensor in (z, z_p, m_p, logs_p, m_q, logs_q):
        assert tensor.shape == (3, inter, t) and torch.isfinite(tensor).all()
    assert x_mask.shape == y_mask.shape == (3, 1, t)
    assert x_mask.sum(dim=(1, 2)).tolist() == lengths.tolist()

    model.eval()
    out, mask = model.infer(phone, lengths, pitch, pitchf, sid)
    assert out.shape == (3, 1, t * hop) and torch.isfinite(out).all()
    assert mask.shape == (3, 1, t) and mask.sum(dim=(1, 2)).tolist() == lengths.tolist()


def test_short_batch_is_padded_to_segment():
    model = Synthesizer(*debug_config(segment_size=8))
    phone, lengths, pitch, pitchf, y, sid = _inputs(2, 5, 768, 3)
    wav = model(phone, lengths, pitch, pitchf, y, lengths, sid)[0]
    assert wav.shape == (2, 1, 8 * model.hop_length)


def test_pitch_model_requires_pitchf():
    model = Synthesizer(*debug_config()).eval()
    phone, lengths, pitch, _, _, sid = _inputs(1, 10, 768, 0)
    with pytest.raises(ValueError, match="pitchf"):
        model.infer(phone, lengths, pitch, None, sid)


def test_gradients_reach_every_part():
    torch.manual_seed(0)
    model = Synthesizer(*debug_config())
    phone, lengths, pitch, pitchf, y, sid = _inputs(2, 16, 768, 4)
    out = model(phone, lengths, pitch, pitchf, y, lengths, sid)
    wav, y_mask, z_p, m_p, logs_p, logs_q = (
        out.wav,
        out.y_mask,
        out.z_p,
        out.m_p,
        out.logs_p,
        out.logs_q,
    )
    kl = (logs_p - logs_q + 0.5 * (z_p - m_p) ** 2 * torch.exp(-2 * logs_p)) * y_mask
    (wav.pow(2).mean() + kl.mean()).backward()
    for part in ("enc_p", "dec", "flow", "enc_q", "emb_g"):
        grads = [p.grad for n, p in model.named_parameters() if n.startswith(part)]
        assert any(g is not None and g.abs().sum() > 0 for g in grads), part


def test_remove_weight_norm_keeps_output():
    torch.manual_seed(0)
    model = Synthesizer(*debug_config()).eval()
    phone, lengths, pitch, pitchf, _, sid = _inputs(2, 14, 768, 5)
    torch.manual_seed(7)
    before = model.infer(phone, lengths, pitch, pitchf, sid)[0]
    assert has_weight_norm(model)
    model.remove_weight_norm()
    assert not has_weight_norm(model)
    assert not any("parametrizations" in k for k in model.state_dict())
    torch.manual_seed(7)
    after = model.infer(phone, lengths, pitch, pitchf, sid)[0]
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-6)


def test_state_dict_round_trip_gives_identical_audio(tmp_path):
    torch.manual_seed(0)
    model = Synthesizer(*debug_config()).eval()
    with torch.no_grad():  # make the zero-initialised flow outputs matter
        for p in model.flow.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    torch.save(model.state_dict(), tmp_path / "g.pth")
    fresh = Synthesizer(*debug_config()).eval()
    fresh.load_state_dict(torch.load(tmp_path / "g.pth", weights_only=True), strict=True)
    phone, lengths, pitch, pitchf, _, sid = _inputs(2, 14, 768, 6)
    torch.manual_seed(3)
    a = model.infer(phone, lengths, pitch, pitchf, sid)[0]
    torch.manual_seed(3)
    b = fresh.infer(phone, lengths, pitch, pitchf, sid)[0]
    assert torch.equal(a, b)
    torch.manual_seed(4)  # and the noise really depends on the seed
    assert not torch.equal(a, model.infer(phone, lengths, pitch, pitchf, sid)[0])


def test_config_list_and_string_sample_rate():
    cfg = debug_config(sr="40k")
    model = Synthesizer(*cfg)
    assert model.sample_rate == 40000 and model.config[-1] == 40000
    assert model.config[:-1] == cfg[:-1]
    assert parse_sample_rate("40k") == 40000 and parse_sample_rate(48000) == 48000
    with pytest.raises(ValueError, match="resblock"):
        Synthesizer(*[*cfg[:9], "2", *cfg[10:]])
    with pytest.raises(ValueError, match="needs F0"):
        Synthesizer(*cfg, use_f0=False, vocoder="RefineGAN")


def test_config_list_of_a_model_config_is_what_the_built_model_stores():
    from hydra.utils import instantiate

    node = compose("train", ["name=x", "model=debug"]).model.synthesizer
    cfg = config_list(node)
    assert len(cfg) == len(CONFIG_KEYS) == 18
    assert cfg == instantiate(node).config == Synthesizer(*cfg).config
    assert type(cfg[11]) is list and all(type(d) is list for d in cfg[11])  # no ListConfig
    changed = config_list(node, segment_size=4, sr=32000)
    assert (changed[1], changed[17]) == (4, 32000) and changed[2:17] == cfg[2:17]
    with pytest.raises(KeyError, match="hop_length"):
        config_list(node, hop_length=160)
    # sizes from the ${layout:...} resolver come out as plain lists too
    v1 = config_list(
        compose("train", ["name=x", "model=48k", "embedder.version=v1"]).model.synthesizer
    )
    assert type(v1[12]) is list and v1[12] == [10, 6, 2, 2, 2] and type(v1[14]) is list


def test_decode_runs_the_vocoder_on_a_span_with_the_flow_values_of_the_whole():
    # live conversion: the flow on the span plus FLOW_CONTEXT gives the whole flow's values
    torch.manual_seed(0)
    model = Synthesizer(*debug_config(), use_f0=True, text_enc_hidden_dim=768).eval()
    with torch.no_grad():  # VITS zero-initialises each coupling's output: make it do something
        for p in model.flow.parameters():
            p.normal_(0, 0.3)
    t, start, n = 120, 70, 30
    phone, lengths, pitch, pitchf, _, sid = _inputs(1, t, 768, 0)
    lengths[:] = t
    seen = []
    model.dec.forward = lambda z, f0, g=None: (
        seen.append((z, f0)) or z.new_zeros(1, 1, z.size(2) * 2)
    )
    for decode in (None, (start, n)):
        torch.manual_seed(1)  # the same prior noise
        model.infer(phone, lengths, pitch, pitchf, sid, decode=decode)
    (z_all, f0_all), (z_span, f0_span) = seen
    assert z_span.shape[2] == n
    torch.testing.assert_close(z_span, z_all[:, :, start : start + n], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(f0_span, f0_all[:, start : start + n])
