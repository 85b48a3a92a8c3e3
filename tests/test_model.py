"""Tests of ich_study.model: shapes, summed directions, LSTM init, freezing, bf16, checkpointing."""
import pytest
import torch
import torch.nn.functional as F

from ich_study.model import ICHNet, MaxPool2x2, SliceCNN, SummedBiLSTM, init_lstm_, resolve_precision

torch.set_num_threads(1)


def tiny(**kwargs):
    kwargs = {"in_channels": 1, "base_width": 4, "lstm_layers": 2, "hidden_size": 16,
              "precision": "float32", **kwargs}
    return ICHNet(**kwargs)


@pytest.mark.parametrize("slices,height,width,channels", [(1, 32, 32, 1), (6, 32, 48, 1),
                                                           (11, 64, 64, 2), (3, 40, 33, 3)])
def test_shapes(slices, height, width, channels):
    model = tiny(in_channels=channels).eval()
    volumes = torch.rand(2, slices, channels, height, width)
    with torch.no_grad():
        assert model(volumes).shape == (2, 2)
        assert model.slice_features(volumes).shape == (2, slices, 512)
        probabilities = model.slice_probabilities(volumes)
    assert probabilities.shape == (2, slices)
    assert ((probabilities >= 0) & (probabilities <= 1)).all()


def test_slice_cnn_widths_and_small_input():
    cnn = SliceCNN(in_channels=1, base_width=16)
    convs = [m for m in cnn.features if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [16, 16, 32, 32, 64, 64, 128, 128, 256, 256, 512]
    assert sum(isinstance(m, MaxPool2x2) for m in cnn.features) == 5
    with pytest.raises(ValueError, match="at least 32"):
        cnn(torch.rand(1, 1, 31, 64))


def _manual_lstm(sequence, w_ih, w_hh, b_ih, b_hh):
    hidden = w_hh.shape[1]
    h = c = torch.zeros(hidden, dtype=sequence.dtype)
    outputs = []
    for x in sequence:
        i, f, g, o = (w_ih @ x + b_ih + w_hh @ h + b_hh).split(hidden)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        outputs.append(h)
    return torch.stack(outputs)


def test_directions_are_summed_and_stacked_on_the_sum():
    torch.manual_seed(0)
    bilstm = SummedBiLSTM(input_size=5, hidden_size=4, num_layers=2).double()
    sequence = torch.rand(1, 6, 5, dtype=torch.float64)
    with torch.no_grad():
        outputs, image_vector = bilstm(sequence)
        layer_input = sequence[0]
        for lstm in bilstm.layers:
            forward = _manual_lstm(layer_input, lstm.weight_ih_l0, lstm.weight_hh_l0,
                                   lstm.bias_ih_l0, lstm.bias_hh_l0)
            backward = _manual_lstm(layer_input.flip(0), lstm.weight_ih_l0_reverse,
                                    lstm.weight_hh_l0_reverse, lstm.bias_ih_l0_reverse,
                                    lstm.bias_hh_l0_reverse).flip(0)
            layer_input = forward + backward          # the next layer reads the SUM (4 wide)
    torch.testing.assert_close(outputs[0], layer_input)
    torch.testing.assert_close(image_vector[0], forward[-1] + backward[0])
    assert bilstm.layers[1].input_size == 4


def test_lstm_init():
    torch.manual_seed(0)
    lstm = init_lstm_(torch.nn.LSTM(64, 32, bidirectional=True, batch_first=True))
    for suffix in ("l0", "l0_reverse"):
        w_ih, w_hh = getattr(lstm, f"weight_ih_{suffix}"), getattr(lstm, f"weight_hh_{suffix}")
        bias = getattr(lstm, f"bias_ih_{suffix}") + getattr(lstm, f"bias_hh_{suffix}")
        limit = (6 / (64 + 4 * 32)) ** 0.5                  # Glorot uniform over (4H, input)
        assert w_ih.abs().max() <= limit + 1e-6 and w_ih.abs().max() > 0.9 * limit
        assert abs(w_ih.var().item() - limit ** 2 / 3) < 0.2 * limit ** 2 / 3
        for gate in range(4):
            block = w_hh[gate * 32:(gate + 1) * 32]
            torch.testing.assert_close(block @ block.T, torch.eye(32), atol=1e-5, rtol=0)
        torch.testing.assert_close(bias[32:64], torch.ones(32))      # forget gate sums to 1
        torch.testing.assert_close(bias[:32], torch.zeros(32))
        torch.testing.assert_close(bias[64:], torch.zeros(64))
        assert (getattr(lstm, f"bias_hh_{suffix}") == 0).all()


def test_frozen_cnn_gets_no_gradient_in_lstm_stage_and_does_end_to_end():
    model = tiny().train()
    volumes, target = torch.rand(1, 5, 1, 32, 32), torch.tensor([1])
    model.freeze_cnn(True)
    F.cross_entropy(model(volumes), target).backward()
    assert all(p.grad is None for p in model.cnn.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.lstm.parameters())
    assert not model.cnn.training                   # no dropout in a frozen feature extractor
    model.zero_grad(set_to_none=True)
    model.freeze_cnn(False).train()
    F.cross_entropy(model(volumes), target).backward()
    trained = [*model.cnn.features.parameters(), *model.cnn.dense.parameters()]
    assert all(p.grad is not None for p in trained)
    assert model.cnn.training


def test_cnn_dropout_only_where_switched_on():
    """Training mode drops CNN features only with use_cnn_dropout (pre-training); the full model's
    training passes are then deterministic, so stage 3 reads the features stage 2 was trained on."""
    model = tiny().configure(precision="float32").train()
    slices = torch.rand(6, 1, 32, 32)
    torch.manual_seed(0); first = model._cnn(slices)
    torch.manual_seed(1); second = model._cnn(slices)
    assert torch.equal(first, second)
    assert not any(m.training for m in model.cnn.modules() if isinstance(m, torch.nn.Dropout))
    assert model.cnn.features.training                  # only dropout is affected
    model.use_cnn_dropout(True)
    torch.manual_seed(1); dropped = model._cnn(slices)
    assert not torch.equal(first, dropped)
    model.eval()
    assert torch.equal(model._cnn(slices), first)       # eval mode never drops
    model.train().use_cnn_dropout(False)
    assert torch.equal(model._cnn(slices), first)


def test_bf16_agrees_with_float32():
    torch.manual_seed(0)
    model = tiny().eval()
    volumes = torch.rand(2, 5, 1, 48, 48)
    with torch.no_grad():
        p32 = model.configure(precision="float32")(volumes).softmax(1)
        p16 = model.configure(precision="bf16")(volumes).softmax(1)
        f32 = model.configure(precision="float32").slice_features(volumes)
        f16 = model.configure(precision="bf16").slice_features(volumes)
    assert f16.dtype == torch.float32
    assert (p16 - p32).abs().max() < 0.02
    assert ((f16 - f32).norm() / f32.norm()) < 0.05


def test_checkpointed_forward_and_gradients_equal_plain():
    torch.manual_seed(0)
    model = tiny().train()
    model.cnn.dense.eval()                          # dropout masks depend on the chunking
    volumes = torch.rand(2, 7, 1, 32, 32)

    def run():
        model.zero_grad(set_to_none=True)
        logits = model(volumes)
        F.cross_entropy(logits, torch.tensor([0, 1])).backward()
        return logits.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]

    logits_plain, grads_plain = run()
    model.configure(checkpoint_chunk=3)
    logits_ckpt, grads_ckpt = run()
    torch.testing.assert_close(logits_ckpt, logits_plain, atol=1e-5, rtol=1e-4)
    assert len(grads_ckpt) == len(grads_plain)
    for a, b in zip(grads_ckpt, grads_plain):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-3)


def _saved_bytes(model, volumes):
    """Bytes autograd keeps for the backward pass of one forward pass."""
    saved = []
    def pack(tensor):
        saved.append(tensor.numel() * tensor.element_size()); return tensor
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        model(volumes)
    return sum(saved)


def test_checkpointing_bounds_what_autograd_keeps_whatever_the_number_of_slices():
    torch.manual_seed(0)
    model = tiny().train()
    plain = {n: _saved_bytes(model, torch.rand(1, n, 1, 64, 64)) for n in (8, 32)}
    model.configure(checkpoint_chunk=4)
    chunked = {n: _saved_bytes(model, torch.rand(1, n, 1, 64, 64)) for n in (8, 32)}
    assert plain[32] > 2.5 * plain[8]                  # without: activations of every slice
    assert chunked[32] < plain[32] / 8                 # with: chunk inputs/outputs and the LSTM only
    # and the per-chunk activations are recomputed in the backward pass, not stored
    assert chunked[32] - chunked[8] < (plain[32] - plain[8]) / 8


def test_inference_chunks_give_the_same_answer_and_only_apply_without_gradients():
    torch.manual_seed(0)
    volumes = torch.rand(2, 11, 1, 32, 32)
    model = tiny(inference_chunk=None).eval()
    with torch.no_grad(): whole = model(volumes)
    calls = []
    hook = model.cnn.register_forward_hook(lambda module, inputs, output: calls.append(inputs[0].shape[0]))
    model.configure(inference_chunk=4)
    with torch.no_grad(): chunked = model(volumes)
    torch.testing.assert_close(chunked, whole, atol=1e-5, rtol=1e-4)
    assert calls == [4, 4, 4, 4, 4, 2]                     # 22 slices in chunks of 4
    calls.clear()
    model.train(); model.cnn.dense.eval()
    model(volumes).sum().backward()                        # the CNN trains: one call, as configured
    assert calls == [22]
    calls.clear()
    model.freeze_cnn(); model(volumes)                     # frozen CNN (stage 2): chunked again
    assert calls == [4, 4, 4, 4, 4, 2]
    hook.remove()


def test_channels_last_is_layout_only():
    torch.manual_seed(0)
    model = tiny(channels_last=False).eval()
    volumes = torch.rand(1, 4, 1, 32, 32)
    with torch.no_grad():
        plain = model(volumes)
        fast = model.configure(channels_last=True)(volumes)
    torch.testing.assert_close(fast, plain, atol=1e-5, rtol=1e-4)


def test_bad_options():
    with pytest.raises(ValueError, match="precision"):
        resolve_precision("fp16", "cpu")
    with pytest.raises(ValueError, match="checkpoint_chunk"):
        tiny(checkpoint_chunk=0)
    with pytest.raises(ValueError, match="inference_chunk"):
        tiny(inference_chunk=0)
    with pytest.raises(ValueError, match="volumes must be"):
        tiny().slice_features(torch.rand(4, 1, 32, 32))


def test_cnn_init_keeps_slices_apart():
    torch.manual_seed(0)
    cnn = SliceCNN(base_width=4).eval()
    for module in cnn.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            assert (module.bias == 0).all()
    with torch.no_grad():
        features = cnn(torch.rand(6, 1, 64, 64))
    # different slices must give different vectors (PyTorch's default init made them equal to 1e-8)
    assert features.std(0).mean() > 1e-3 * features.abs().mean() > 0


def test_cnn_computes_the_papers_unit_order():
    """Pool-before-ReLU and strided-maximum pooling give exactly conv, ReLU, conv, ReLU, max-pool."""
    torch.manual_seed(0)
    cnn = SliceCNN(base_width=4).eval()
    convs = [m for m in cnn.features if isinstance(m, torch.nn.Conv2d)]
    for size in ((32, 32), (47, 61), (64, 40)):
        images = torch.rand(2, 1, *size)
        expected = images
        for unit in range(5):
            expected = F.relu(convs[2 * unit + 1](F.relu(convs[2 * unit](expected))))
            expected = F.max_pool2d(expected, 2, 2)
        expected = F.adaptive_max_pool2d(F.relu(convs[10](expected)), 1).flatten(1)
        with torch.no_grad():
            torch.testing.assert_close(cnn.features(images), expected)
    x = torch.randn(2, 3, 9, 7, requires_grad=True)
    torch.testing.assert_close(MaxPool2x2()(x), F.max_pool2d(x, 2, 2))
