"""The network, its preprocessing, and inference back onto the source grid."""

from __future__ import annotations

from dataclasses import replace

import imageio.v2 as imageio
import numpy as np
import pytest
import torch

import laseg.model
import laseg.train
from laseg.checkpoint import CHECKPOINT_FORMAT, save_checkpoint
from laseg.io import Geometry, InputError
from laseg.masks import dice
from laseg.model import (
    VIEW_AXES,
    ModelConfig,
    UNet2D,
    ViewNetworks,
    context_stack,
    from_view,
    in_view_order,
    interpolate_slices,
    normalize_intensity,
    pad_to_multiple,
    predict_logits,
    prepare_volume,
    resample_inplane,
    select_precision,
    sigmoid,
    to_view,
)
from laseg.predict import (
    atrium_region,
    load_model,
    multiscale_logits,
    predict_canonical,
    predict_stack,
    view_logits_on_scan,
)
from laseg.slices import SliceStack
from laseg.train import TrainSettings, augment_batch, bce_dice_loss, train_model, write_history


def test_unet_keeps_the_slice_size():
    config = ModelConfig(base_channels=4, depth=3)
    out = UNet2D(config)(torch.zeros(2, config.in_channels, 48, 40))
    assert out.shape == (2, 1, 48, 40)


def test_context_stack_clamps_at_the_ends():
    volume = np.arange(5)[:, None, None] * np.ones((5, 2, 2))
    stack = context_stack(volume, np.array([0, 4]), 2)
    assert stack[0, :, 0, 0].tolist() == [0, 0, 0, 1, 2] and stack[1, :, 0, 0].tolist() == [2, 3, 4, 4, 4]


def test_pad_and_crop_round_trip():
    volume = np.random.default_rng(0).random((3, 37, 50)).astype(np.float32)
    padded, crop = pad_to_multiple(volume, 16, 0.0)
    assert padded.shape[1] % 16 == 0 and padded.shape[2] % 16 == 0
    assert np.array_equal(padded[:, crop[0], crop[1]], volume)


def test_resample_keeps_the_mean_and_normalize_gives_unit_scale():
    volume = np.random.default_rng(0).random((3, 64, 50)).astype(np.float32)
    assert resample_inplane(volume, (32, 25), "area").mean() == pytest.approx(volume.mean(), rel=1e-4)
    normalized = normalize_intensity(volume * 1000 + 7, "zscore")
    assert abs(normalized.mean()) < 1e-4 and normalized.std() == pytest.approx(1.0, rel=1e-3)
    normalized = normalize_intensity(volume * 1000 + 7)
    assert normalized.min() == 0.0 and normalized.max() == 1.0
    assert np.allclose(normalized, normalize_intensity(volume), atol=1e-5)  # no unit: gain and offset drop out


def test_content_range_ignores_a_fill_value_around_the_scan():
    # A scan padded with zeros (or resampled, its outside filled with its minimum) keeps its scale; the z-score
    # moves with the share of the field of view the padding takes.
    volume = np.random.default_rng(1).gamma(2.0, 100.0, (6, 40, 40)).astype(np.float32) + 50
    padded = np.pad(volume, ((2, 2), (30, 30), (30, 30)))
    inner = (slice(2, -2), slice(30, -30), slice(30, -30))
    assert np.allclose(normalize_intensity(padded)[inner], normalize_intensity(volume), atol=1e-3)
    assert not np.allclose(
        normalize_intensity(padded, "zscore")[inner], normalize_intensity(volume, "zscore"), atol=0.1
    )


def test_perfect_prediction_has_lower_loss_than_a_wrong_one():
    target = torch.zeros(1, 1, 8, 8)
    target[..., 2:6, 2:6] = 1
    assert bce_dice_loss((target * 2 - 1) * 10, target) < bce_dice_loss((1 - 2 * target) * 10, target)


def tiny_stack(direction=(0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0)) -> SliceStack:
    rng = np.random.default_rng(0)
    image = rng.normal(0, 1, (6, 40, 32)).astype(np.float32)
    label = np.zeros((6, 40, 32), np.uint8)
    label[2:5, 10:20, 8:16] = 1
    image[label == 1] += 3
    geometry = Geometry((40, 32, 6), (2.0, 2.5, 3.0), (1.0, 2.0, 3.0), direction)
    return SliceStack("tiny", image, label, geometry, (3.0, 2.5, 2.0))


def test_labels_reach_the_network_grid_as_area_fractions_and_stay_soft_through_augmentation():
    stack = tiny_stack()  # x spacing 2.0 mm onto the 2.5 mm grid: the atrium's x edges fall inside pixels
    config = ModelConfig(base_channels=4, depth=2, context_slices=1, inplane_spacing_mm=2.5)
    _, fraction = prepare_volume(stack, config)
    assert fraction.dtype == np.float32 and fraction.min() >= 0 and fraction.max() <= 1
    assert ((fraction > 0.05) & (fraction < 0.95)).any()  # partial-volume pixels, not 0/1
    native_mm2, grid_mm2 = 2.5 * 2.0, (40 * 2.5 / fraction.shape[1]) * (32 * 2.0 / fraction.shape[2])
    assert fraction.sum() * grid_mm2 == pytest.approx(stack.label.sum() * native_mm2, rel=1e-4)  # area kept

    labels = torch.from_numpy(fraction[None, 2:3]).repeat(4, 1, 1, 1)
    images = torch.randn(4, 3, *fraction.shape[1:])
    _, soft = augment_batch(images, labels, torch.Generator().manual_seed(0), soft_labels=True)
    _, binary = augment_batch(images, labels, torch.Generator().manual_seed(0), soft_labels=False)
    assert ((soft > 0.05) & (soft < 0.95)).any()
    assert set(binary.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(binary, (soft >= 0.5).float())  # same draw: thresholding is the only difference


@pytest.mark.parametrize("views", [("axial",), ("axial", "coronal", "sagittal")])
def test_training_and_inference_return_a_probability_on_the_source_grid(tmp_path, views):
    config = ModelConfig(base_channels=4, depth=2, context_slices=1, inplane_spacing_mm=2.5, views=views)
    settings = TrainSettings(max_epochs=2, iterations_per_epoch=2, batch_size=2, patch_px=16, validation_patients=0)
    checkpoint, history = train_model([tiny_stack()], config, settings, log=lambda line: None)
    assert [(h["view"], h["epoch"]) for h in history] == [(view, epoch) for view in views for epoch in (1, 2)]
    assert checkpoint["best_epoch"] == {view: 2 for view in views}  # no validation patients: the annealed last epoch
    save_checkpoint(checkpoint, tmp_path / "model.pt")
    net, loaded_config, meta = load_model(tmp_path / "model.pt", "cpu")
    assert loaded_config == config and meta["versions"]["torch"] == torch.__version__
    stack = tiny_stack()
    probability = predict_stack(net, loaded_config, stack)
    assert probability.shape == tuple(reversed(stack.source_geometry.size))
    assert probability.min() >= 0 and probability.max() <= 1


def test_a_trained_model_finds_the_labelled_region():
    config = ModelConfig(base_channels=8, depth=2, context_slices=1, inplane_spacing_mm=2.5, views=("axial",))
    settings = TrainSettings(max_epochs=10, iterations_per_epoch=10, batch_size=4, patch_px=16, budget_minutes=30)
    checkpoint, _ = train_model([tiny_stack()], config, settings, log=lambda line: None)
    net = ViewNetworks(config)
    net.load_state_dict(checkpoint["state_dict"])
    stack = tiny_stack()
    probability = predict_canonical(net.eval(), config, stack)
    inside, outside = probability[stack.label == 1].mean(), probability[stack.label == 0].mean()
    assert inside > 0.5 > outside and dice(probability >= 0.5, stack.label) > 0.6, (inside, outside)


def test_the_best_epoch_is_the_validation_maximum_and_the_curve_shows_it(tmp_path):
    config = ModelConfig(base_channels=4, depth=2, context_slices=1, inplane_spacing_mm=2.5, views=("axial", "coronal"))
    settings = TrainSettings(max_epochs=4, iterations_per_epoch=3, batch_size=2, patch_px=16, validation_patients=1)
    patients = [replace(tiny_stack(), patient=name) for name in ("a", "b", "c")]
    checkpoint, history = train_model(patients, config, settings, log=lambda line: None)
    assert checkpoint["validation_patients"] == ["c"] and checkpoint["train_patients"] == ["a", "b"]
    for view in config.views:
        curve = [h["val_dice"] for h in history if h["view"] == view]
        assert checkpoint["best_epoch"][view] == 1 + int(np.argmax(curve))
    write_history(history, tmp_path / "h.csv", tmp_path / "with.png")
    write_history([{**h, "val_dice": float("nan")} for h in history], tmp_path / "h2.csv", tmp_path / "without.png")
    # With validation: loss and Dice panels; without: the loss panel alone (no empty Dice plot).
    width_with, width_without = (imageio.imread(tmp_path / f"{n}.png").shape[1] for n in ("with", "without"))
    assert width_with == 1100 and width_without == 660


def test_precision_auto_is_bf16_only_where_the_hardware_multiplies_bf16(monkeypatch):
    cpu = torch.device("cpu")
    assert select_precision("fp32", cpu) == "fp32" and select_precision("bf16", cpu) == "bf16"
    with pytest.raises(ValueError, match="precision"):
        select_precision("fp16", cpu)
    for has_amx, expected in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(laseg.model, "cpu_has_amx_bf16", lambda has_amx=has_amx: has_amx)
        assert select_precision("auto", cpu) == expected


def test_bf16_training_and_inference_stay_close_to_fp32():
    # Both precisions learn the tiny volume from the same seed (the loss falls from about 1.27 to 0.45:
    # measured), and bf16 inference of one network stays near its fp32 inference (bf16 keeps 8 bits of
    # mantissa: under 0.01 on a probability, measured).
    config = ModelConfig(base_channels=4, depth=2, context_slices=1)
    settings = TrainSettings(
        max_epochs=6, iterations_per_epoch=8, batch_size=4, patch_px=16, budget_minutes=30, learning_rate=0.02
    )
    stack = tiny_stack()
    image, _ = prepare_volume(stack, config)
    by_precision = {}
    for precision in ("fp32", "bf16"):
        checkpoint, history = train_model(
            [stack], config, TrainSettings(**{**settings.__dict__, "precision": precision}), log=lambda line: None
        )
        assert checkpoint["precision"] == precision and history[-1]["train_loss"] < 0.6 * history[0]["train_loss"]
        net = UNet2D(config)
        net.load_state_dict({k.removeprefix("networks.axial."): v for k, v in checkpoint["state_dict"].items()})
        by_precision[precision] = {
            p: sigmoid(predict_logits(net, image, config, torch.device("cpu"), p)) for p in ("fp32", "bf16")
        }
    fp32_net = by_precision["fp32"]
    assert fp32_net["fp32"].max() - fp32_net["fp32"].min() > 0.5  # it has learned: not all near 0.5
    assert 0 < np.abs(fp32_net["bf16"] - fp32_net["fp32"]).max() < 0.03  # > 0: bf16 really ran
    assert np.abs(by_precision["bf16"]["fp32"] - fp32_net["fp32"]).mean() < 0.03


def test_checkpoint_missing_or_of_another_format_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="checkpoint not found"):
        load_model(tmp_path / "none.pt")
    torch.save({"format": CHECKPOINT_FORMAT + 1}, tmp_path / "future.pt")
    with pytest.raises(InputError, match="format"):
        load_model(tmp_path / "future.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(InputError, match="not a readable laseg checkpoint"):
        load_model(tmp_path / "junk.pt")


def test_training_is_repeatable_when_the_epoch_limit_binds():
    config = ModelConfig(base_channels=4, depth=2, context_slices=1, inplane_spacing_mm=2.5)
    settings = TrainSettings(
        max_epochs=2, iterations_per_epoch=3, batch_size=2, patch_px=16, validation_patients=0, budget_minutes=30
    )
    first, _ = train_model([tiny_stack()], config, settings, log=lambda line: None)
    second, _ = train_model([tiny_stack()], config, settings, log=lambda line: None)
    assert all(torch.equal(first["state_dict"][k], second["state_dict"][k]) for k in first["state_dict"])


class Crash(Exception):
    """Stands for a SIGKILL: raised from the log after an epoch's state was saved."""


def test_a_killed_training_resumes_after_its_last_epoch_with_identical_weights(tmp_path):
    config = ModelConfig(base_channels=4, depth=2, context_slices=1, views=("axial", "coronal"))
    settings = TrainSettings(
        max_epochs=4, iterations_per_epoch=2, batch_size=2, patch_px=16, validation_patients=0, budget_minutes=30
    )
    uninterrupted, history = train_model([tiny_stack()], config, settings, log=lambda line: None)

    state = tmp_path / ".model.pt.resume"

    def crash_in_coronal_epoch_3(line: str) -> None:
        if line.startswith("coronal: [") and " epoch   3 " in line:
            raise Crash

    with pytest.raises(Crash):
        train_model([tiny_stack()], config, settings, log=crash_in_coronal_epoch_3, resume_path=state)
    assert state.is_file()
    lines: list[str] = []
    resumed, resumed_history = train_model([tiny_stack()], config, settings, log=lines.append, resume_path=state)
    assert "resuming: axial network already trained" in lines and any(
        line.startswith("resuming coronal from epoch 3") for line in lines
    )
    # Only coronal's epoch 4 ran again (epoch 3 had been saved before the crash).
    assert sum(line.startswith("coronal: [") for line in lines) == 1
    assert all(torch.equal(uninterrupted["state_dict"][k], resumed["state_dict"][k]) for k in resumed["state_dict"])
    assert [(h["view"], h["epoch"]) for h in resumed_history] == [(h["view"], h["epoch"]) for h in history]

    # A state of another job (here: more epochs) is not used.
    lines.clear()
    train_model([tiny_stack()], config, replace(settings, max_epochs=1), log=lines.append, resume_path=state)
    assert any("resume state of another training job" in line for line in lines)
    state.write_bytes(b"truncated")
    lines.clear()
    train_model([tiny_stack()], config, settings, log=lines.append, resume_path=state)
    assert any("unreadable resume state" in line and str(state) in line for line in lines)


class CentreSliceLogit(torch.nn.Module):
    """A stand-in network whose logit is the centre input slice: zoom-equivariant up to interpolation."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, x.shape[1] // 2 : x.shape[1] // 2 + 1]


def test_interpolated_slices_keep_the_originals_in_place():
    volume = np.random.default_rng(2).random((4, 3, 5)).astype(np.float32)
    refined = interpolate_slices(volume, 3)
    assert refined.shape == (10, 3, 5) and refined.dtype == volume.dtype
    assert np.array_equal(refined[::3], volume)
    assert np.allclose(refined[1], (2 * volume[0] + volume[1]) / 3)
    assert interpolate_slices(volume, 1) is volume


class ContextSpanLogit(torch.nn.Module):
    """A stand-in network whose logit is the difference between its outermost context slices: it tells how far
    apart, in the scan, the slices it is fed lie."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 50.0 * (x[:, -1:] - x[:, :1])


def test_a_scan_with_thicker_slices_than_trained_on_is_predicted_as_at_the_trained_spacing():
    def ramp(slice_mm: float) -> SliceStack:
        # Intensity rising 20 per mm across the slices, between bands that fix its 0.5th and 99.5th percentiles.
        z_mm = np.arange(0.0, 30.0 + 1e-6, slice_mm)
        image = np.repeat((100.0 + 20.0 * z_mm)[:, None, None], 32, axis=1).repeat(32, axis=2).astype(np.float32)
        image[:, :4], image[:, -4:], image[0, 0, 0] = 10.0, 1000.0, 0.0
        geometry = Geometry((32, 32, len(z_mm)), (1.0, 1.0, slice_mm), (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
        return SliceStack("ramp", image, None, geometry, (slice_mm, 1.0, 1.0))

    net, cpu = {"axial": ContextSpanLogit()}, torch.device("cpu")
    settings = {"context_slices": 1, "depth": 2, "inplane_spacing_mm": 1.0, "views": ("axial",)}
    trained_at_1mm = ModelConfig(**settings, view_slice_spacing_mm={"axial": 1.0})
    fine = predict_canonical(net, trained_at_1mm, ramp(1.0), device=cpu)
    thick = predict_canonical(net, trained_at_1mm, ramp(3.0), device=cpu)
    inner = (slice(1, -1), slice(4, -4))  # away from the first and last slice and from the bands
    assert np.allclose(thick[inner], fine[::3][inner], atol=1e-3)
    # Fed the 3 mm slices as they are, the network sees its context three times further apart.
    unknown = predict_canonical(net, ModelConfig(**settings), ramp(3.0), device=cpu)
    assert np.abs(unknown[inner] - fine[::3][inner]).min() > 0.05


def test_multiscale_prediction_maps_every_zoom_back_onto_the_input_grid():
    config = ModelConfig(context_slices=1, depth=2)
    yy, xx = np.mgrid[0:48, 0:64]
    blob = 6.0 * np.exp(-((yy - 30.0) ** 2 + (xx - 20.0) ** 2) / (2 * 8.0**2)) - 3.0  # off-centre, smooth
    image = np.repeat(blob[None], 3, axis=0).astype(np.float32)
    net, device = CentreSliceLogit(), torch.device("cpu")
    single = sigmoid(predict_logits(net, image, config, device))
    assert np.array_equal(sigmoid(multiscale_logits(net, config, image, device, [1.0])), single)
    zoomed = sigmoid(multiscale_logits(net, config, image, device, [1.0, 0.9, 1.1]))
    assert zoomed.shape == image.shape and np.abs(zoomed - single).max() < 0.03
    # The tolerance is tight enough to catch a zoom mapped back 2 pixels off.
    assert np.abs(sigmoid(predict_logits(net, np.roll(image, 2, axis=2), config, device)) - single).max() > 0.1
    with pytest.raises(ValueError, match="positive"):
        multiscale_logits(net, config, image, device, [1.0, 0.0])


def test_logits_not_probabilities_go_from_the_network_grid_to_the_scan():
    # A steep ramp across columns, crossing 0 at grid column 3.2: the boundary the network draws. On a scan
    # with twice the columns, column 7 sits at grid position 3.25, just inside it.
    columns = np.arange(8, dtype=np.float32)
    logits = np.broadcast_to(4.0 * (columns - 3.2), (2, 4, 8)).astype(np.float32)
    probability = sigmoid(view_logits_on_scan(logits, (2, 8, 16), "axial"))
    scan_columns_at_grid = (np.arange(16) + 0.5) / 2 - 0.5
    assert np.array_equal(probability[0, 3] >= 0.5, scan_columns_at_grid >= 3.2)
    assert probability.min() >= 0.0 and probability.max() <= 1.0
    # Interpolated probabilities of the same ramp put the boundary past column 7: the bias this avoids.
    by_probability = resample_inplane(sigmoid(logits), (8, 16), "bilinear")
    assert not by_probability[0, 3, 7] >= 0.5 and probability[0, 3, 7] >= 0.5


class ConstantLogit(torch.nn.Module):
    """A stand-in network with the same logit everywhere."""

    def __init__(self, logit: float) -> None:
        super().__init__()
        self.logit = logit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full_like(x[:, :1], self.logit)


def test_views_are_averaged_as_logits_and_each_keeps_its_own_mask():
    # Two views lean to atrium (logit 1, p 0.73), the third is sure it is not (logit -2.5, p 0.08): averaged
    # probabilities (0.513) would call it atrium, the mean logit (-0.17) does not.
    config = ModelConfig(depth=2, context_slices=1, inplane_spacing_mm=2.5, views=("axial", "coronal", "sagittal"))
    nets = {"axial": ConstantLogit(1.0), "coronal": ConstantLogit(1.0), "sagittal": ConstantLogit(-2.5)}
    view_masks: dict[str, np.ndarray] = {}
    stack = tiny_stack()
    probability = predict_canonical(nets, config, stack, device=torch.device("cpu"), view_masks=view_masks)
    assert probability.shape == stack.image.shape
    assert np.allclose(probability, 1.0 / (1.0 + np.exp(0.5 / 3.0)), atol=1e-5)
    # The route before: each view's own probability (a one-view model), then their mean, called it atrium.
    per_view = [
        predict_canonical(nets, replace(config, views=(view,)), stack, device=torch.device("cpu"))
        for view in config.views
    ]
    assert (np.mean(per_view, axis=0) > 0.5).all() and (probability < 0.5).all()
    assert view_masks["axial"].all() and view_masks["coronal"].all() and not view_masks["sagittal"].any()


def test_zooms_after_the_first_cover_only_the_box_around_the_atrium_and_agree_with_whole_volume_zooms():
    config = ModelConfig(context_slices=1, depth=2)  # coarsest level 4 px: the box grows 8 px and 8 slices
    yy, xx = np.mgrid[0:96, 0:128]
    image = np.full((40, 96, 128), -3.0, np.float32)
    image[18:22] = np.where((yy - 40.0) ** 2 + (xx - 70.0) ** 2 < 10.0**2, 3.0, -3.0)  # 4 of 40 slices
    # A sharpening filter: unlike CentreSliceLogit, a zoom changes what it sees at the atrium's edge.
    net, device = torch.nn.Conv2d(3, 1, 5, padding=2, bias=False), torch.device("cpu")
    with torch.no_grad():
        net.weight.zero_()
        net.weight[0, 1] = -4.0 / 25
        net.weight[0, 1, 2, 2] += 5.0
    pixels_seen: list[int] = []
    net.register_forward_hook(lambda _module, inputs, _output: pixels_seen.append(inputs[0][:, 0].numel()))

    whole = multiscale_logits(net, config, image, device, [1.0, 0.9, 1.1], zoom_region="volume")
    whole_pixels, pixels_seen[:] = sum(pixels_seen), []
    boxed = multiscale_logits(net, config, image, device, [1.0, 0.9, 1.1])
    boxed_pixels = sum(pixels_seen)
    first = multiscale_logits(net, config, image, device, [1.0])
    region = atrium_region(first >= 0.0, 8, 8)
    assert region == (slice(10, 30), slice(23, 58), slice(53, 88))  # the disk spans rows 31-49, columns 61-79
    assert np.abs(boxed[region] - first[region]).max() > 0.5  # the zooms ran inside the box (logits)
    outside = np.ones(image.shape, bool)
    outside[region] = False
    assert np.allclose(boxed[outside], first[outside], rtol=0, atol=1e-6)  # the first zoom stands in there
    # Same mask as zooming every slice whole: a zoomed box samples the slice at other positions than a
    # zoomed slice does, which moves logits but not which side of 0 (probability 0.5) they fall.
    assert ((boxed >= 0.0) != (whole >= 0.0)).sum() <= 0.01 * (whole >= 0.0).sum()
    # The first zoom sees 40 x 96 x 128 pixels, each further zoom about 22 x 35 x 35 of them.
    assert boxed_pixels < 0.45 * whole_pixels

    nothing = np.full((6, 32, 32), -3.0, np.float32)
    assert atrium_region(multiscale_logits(net, config, nothing, device, [1.0]) >= 0.0, 8, 8) is None
    assert np.allclose(
        multiscale_logits(net, config, nothing, device, [1.0, 0.9, 1.1]),
        multiscale_logits(net, config, nothing, device, [1.0]),
        rtol=0,
        atol=1e-6,
    )


def test_views_are_exact_transposes_with_their_own_spacing():
    volume = np.random.default_rng(0).random((5, 7, 9)).astype(np.float32)
    for view in VIEW_AXES:
        assert np.array_equal(from_view(to_view(volume, view), view), volume)
    assert to_view(volume, "coronal").shape == (7, 5, 9) and to_view(volume, "sagittal").shape == (9, 5, 7)
    assert in_view_order((3.0, 2.5, 2.0), "sagittal") == (2.0, 3.0, 2.5)
    assert ModelConfig(views=["axial", "coronal"]).views == ("axial", "coronal")
    for bad in (["axial", "oblique"], [], ["axial", "axial"]):
        with pytest.raises(ValueError, match="model.views"):
            ModelConfig(views=bad)


def test_every_view_maps_its_prediction_back_onto_the_same_voxels():
    # A smooth off-centre blob, anisotropic spacing, and a network whose logit is its centre input
    # slice: every view must then return (nearly) the same probability at the same voxels. (The z-score
    # spreads the blob over several logits, enough for the sigmoid to tell one voxel's shift.)
    zz, yy, xx = np.mgrid[0:12, 0:40, 0:32]
    blob = (
        6.0 * np.exp(-(((zz - 4.0) * 3.0) ** 2 + ((yy - 25.0) * 2.5) ** 2 + ((xx - 10.0) * 2.0) ** 2) / (2 * 14.0**2))
        - 3.0
    )
    geometry = Geometry((32, 40, 12), (2.0, 2.5, 3.0), (0.0, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))
    stack = SliceStack("blob", blob.astype(np.float32), None, geometry, (3.0, 2.5, 2.0))
    net = {view: CentreSliceLogit() for view in VIEW_AXES}  # stands in for ViewNetworks: a network per view
    per_view = {
        view: predict_stack(
            net,
            ModelConfig(context_slices=1, depth=2, views=(view,), intensity="zscore"),
            stack,
            device=torch.device("cpu"),
        )
        for view in VIEW_AXES
    }
    for view in ("coronal", "sagittal"):
        assert per_view[view].shape == per_view["axial"].shape
        assert np.abs(per_view[view] - per_view["axial"]).max() < 0.05
    # The tolerance catches a view put back one voxel off along any axis.
    for axis in range(3):
        assert np.abs(np.roll(per_view["axial"], 1, axis=axis) - per_view["axial"]).max() > 0.05
    mean = predict_stack(
        net,
        ModelConfig(context_slices=1, depth=2, views=tuple(VIEW_AXES), intensity="zscore"),
        stack,
        device=torch.device("cpu"),
    )
    mean_logit = np.mean([np.log(p / (1.0 - p)) for p in per_view.values()], axis=0)  # views average as logits
    assert np.allclose(mean, sigmoid(mean_logit), atol=1e-5)


def test_each_view_network_trains_as_it_would_alone_and_format_1_checkpoints_still_load(tmp_path):
    settings = TrainSettings(max_epochs=2, iterations_per_epoch=2, batch_size=2, patch_px=16, budget_minutes=30)
    small = {"base_channels": 4, "depth": 2, "context_slices": 1}
    both, _ = train_model(
        [tiny_stack()], ModelConfig(**small, views=("axial", "coronal")), settings, log=lambda line: None
    )
    alone, _ = train_model([tiny_stack()], ModelConfig(**small, views=("coronal",)), settings, log=lambda line: None)
    coronal = {k: v for k, v in both["state_dict"].items() if k.startswith("networks.coronal.")}
    assert coronal and all(torch.equal(v, alone["state_dict"][k]) for k, v in coronal.items())

    # Format 1 (before views): one axial network's weights, keys without the view prefix.
    axial_only, _ = train_model([tiny_stack()], ModelConfig(**small), settings, log=lambda line: None)
    unprefixed = {k.removeprefix("networks.axial."): v for k, v in axial_only["state_dict"].items()}
    old_config = {k: v for k, v in axial_only["model_config"].items() if k != "views"}
    torch.save({**axial_only, "format": 1, "state_dict": unprefixed, "model_config": old_config}, tmp_path / "v1.pt")
    save_checkpoint(axial_only, tmp_path / "v2.pt")
    (old_net, old_loaded, _), (new_net, new_loaded, _) = (
        load_model(tmp_path / "v1.pt", "cpu"),
        load_model(tmp_path / "v2.pt", "cpu"),
    )
    assert old_loaded == new_loaded and old_loaded.views == ("axial",)
    assert np.array_equal(
        predict_stack(old_net, old_loaded, tiny_stack()), predict_stack(new_net, new_loaded, tiny_stack())
    )


def test_the_training_budget_is_shared_between_the_views_networks(monkeypatch):
    """Each network may use what is left of the job's cap, divided by the networks still to train."""
    budgets, clock = [], [0.0]
    minutes_used = iter([6.0, 1.0, 0.5])  # the axial network runs 6 min, the coronal 1 min

    def record_budget(train_volumes, val_volumes, config, settings, device, log, view, **resume_arguments):
        budgets.append(round(settings.budget_minutes, 6))
        clock[0] += 60 * next(minutes_used)
        return UNet2D(config, config.in_channels_of(view)).state_dict(), [], 1

    monkeypatch.setattr(laseg.train, "train_network", record_budget)
    monkeypatch.setattr(laseg.train.time, "perf_counter", lambda: clock[0])
    config = ModelConfig(base_channels=4, depth=2, context_slices=1, views=("axial", "coronal", "sagittal"))
    checkpoint, _ = train_model([tiny_stack()], config, TrainSettings(budget_minutes=9.0), log=lambda line: None)
    assert budgets == [3.0, 1.5, 2.0] and checkpoint["train_settings"]["budget_minutes"] == 9.0
