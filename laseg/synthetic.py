"""Deterministic synthetic bright-blood 3D cardiac MRI with left-atrium labels: the embedded default dataset.

Anatomy is built from implicit shapes (approximate signed distances in millimetres, negative inside) in
a heart frame that is rotated and shifted per case, so everything scales with physical size, not voxels.
The left atrium is deliberately hard to find by intensity alone: the left ventricle joins it through
an open mitral orifice and the right atrium, aorta and pulmonary artery sit behind walls thinner than
a voxel, all with the same blood signal.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from laseg.io import Geometry, write_volume

BASE_SPACING_XYZ_MM = np.array([1.25, 1.25, 1.37])

# Tissue classes of the hidden ground truth; LA and LV blood are separate only so tests can compare them.
(BACKGROUND, LUNG, SOFT, LIVER, FAT, MARROW, CSF, MYO, BLOOD, LA_BLOOD, LV_BLOOD) = range(11)
# Relative SSFP signal per class (blood = 1): fat and fluid are bright, air and lung nearly void.
_SIGNAL = np.array([0.0, 0.06, 0.32, 0.38, 0.78, 0.45, 0.9, 0.28, 1.0, 1.0, 1.0])


@dataclass(frozen=True)
class SyntheticCase:
    image: np.ndarray  # (z, y, x) int16
    label: np.ndarray  # (z, y, x) uint8 {0, 1}: left atrium only
    geometry: Geometry


def patient_id(patient_index: int) -> str:
    if patient_index < 0:
        raise ValueError(f"patient index must be >= 0, got {patient_index}")
    return f"syn_{patient_index:03d}"


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=float)
    return v / np.linalg.norm(v)


def _ellipsoid(q, c, r):
    # Ellipsoid distance estimate (exact on the axes): good enough for walls of a few millimetres.
    x, y, z = ((q[i] - np.float32(c[i])) / np.float32(r[i]) for i in range(3))
    k0 = np.sqrt(x * x + y * y + z * z)
    k1 = np.sqrt((x / np.float32(r[0])) ** 2 + (y / np.float32(r[1])) ** 2 + (z / np.float32(r[2])) ** 2)
    return k0 * (k0 - 1) / np.maximum(k1, np.float32(1e-6))


def _spheroid(q, c, axis, half_length, radius):
    d = [q[i] - np.float32(c[i]) for i in range(3)]
    t = d[0] * np.float32(axis[0]) + d[1] * np.float32(axis[1]) + d[2] * np.float32(axis[2])
    p2 = np.maximum(d[0] * d[0] + d[1] * d[1] + d[2] * d[2] - t * t, np.float32(0))
    a2, b2 = np.float32(half_length**2), np.float32(radius**2)
    k0 = np.sqrt(t * t / a2 + p2 / b2)
    k1 = np.sqrt(t * t / (a2 * a2) + p2 / (b2 * b2))
    return k0 * (k0 - 1) / np.maximum(k1, np.float32(1e-6))


@dataclass
class _Frame:
    """Heart-frame coordinates of every voxel, plus what is needed to find a shape's bounding box."""

    q: list[np.ndarray]
    world_axes: list[np.ndarray]  # world x, y, z (LPS mm from the LA centre) along array axes 2, 1, 0
    rot: np.ndarray

    def local(self, pts, radius: float) -> tuple[tuple[slice, ...], list[np.ndarray]]:
        # Vessels are small next to the volume, so tubes are evaluated only in their box; distances are
        # needed only up to a thick wall (9 mm) away, everything farther reads as _FAR.
        world = np.asarray(pts, float) @ self.rot.T
        lo, hi = world.min(0) - radius - 12, world.max(0) + radius + 12
        box = []
        for i in (2, 1, 0):
            inside = np.flatnonzero((self.world_axes[i] >= lo[i]) & (self.world_axes[i] <= hi[i]))
            box.append(slice(inside[0], inside[-1] + 1) if inside.size else slice(0, 0))
        return tuple(box), [c[tuple(box)] for c in self.q]


_FAR = np.float32(1e3)


def _capsule(f: _Frame, a, b, r0: float, r1: float | None = None) -> np.ndarray:
    """Tube from a to b with rounded ends, radius tapering r0 -> r1."""
    r1 = r0 if r1 is None else r1
    box, q = f.local([a, b], max(r0, r1))
    a, ab = np.asarray(a, float), np.asarray(b, float) - np.asarray(a, float)
    d = [q[i] - np.float32(a[i]) for i in range(3)]
    t = (d[0] * np.float32(ab[0]) + d[1] * np.float32(ab[1]) + d[2] * np.float32(ab[2])) / np.float32(ab @ ab)
    t = np.clip(t, 0, 1)
    out = np.full(f.q[0].shape, _FAR)
    out[box] = np.sqrt(sum((d[i] - t * np.float32(ab[i])) ** 2 for i in range(3))) - (r0 + np.float32(r1 - r0) * t)
    return out


def _cylinder(f: _Frame, a, b, r: float) -> np.ndarray:
    """Flat-ended tube: the label of a vein stump must end in a clean cut across the vessel."""
    box, q = f.local([a, b], r)
    length = float(np.linalg.norm(np.asarray(b) - np.asarray(a)))
    u = (np.asarray(b) - np.asarray(a)) / length
    d = [q[i] - np.float32(a[i]) for i in range(3)]
    t = d[0] * np.float32(u[0]) + d[1] * np.float32(u[1]) + d[2] * np.float32(u[2])
    radial = np.sqrt(np.maximum(d[0] * d[0] + d[1] * d[1] + d[2] * d[2] - t * t, np.float32(0)))
    out = np.full(f.q[0].shape, _FAR)
    out[box] = np.maximum(radial - np.float32(r), np.abs(t - np.float32(length / 2)) - np.float32(length / 2))
    return out


def _smooth_union(a, b, k: float = 4.0):
    # Blends junctions (vein ostia, appendage neck) instead of leaving a crease.
    h = np.clip(0.5 + 0.5 * (b - a) / np.float32(k), 0, 1)
    return b + (a - b) * h - np.float32(k) * h * (1 - h)


def _rotation(rng: np.random.Generator) -> np.ndarray:
    axis = _unit(rng.normal(size=3))
    angle = np.deg2rad(rng.uniform(3.0, 20.0))
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def _geometry(rng: np.random.Generator, shape_zyx: tuple[int, int, int]) -> tuple[Geometry, list[np.ndarray]]:
    """Scanner geometry, and world coordinates (LPS, mm, relative to the LA centre) of each voxel axis."""
    size = np.array(shape_zyx[::-1])
    spacing = np.round(BASE_SPACING_XYZ_MM * rng.uniform(0.97, 1.03, 3), 4).astype(np.float32).astype(float)
    flip = np.array([-1.0, -1.0, 1.0]) if rng.random() < 0.5 else np.ones(3)
    la_centre = rng.uniform([-15, -20, -30], [15, 20, 10])
    # The LA sits a little posterior-superior of the FOV centre, as in a planned LA acquisition.
    fov_centre = la_centre + np.array([4.0, -8.0, -6.0]) + rng.uniform(-6, 6, 3)
    origin = np.round(fov_centre - flip * spacing * (size - 1) / 2, 2).astype(np.float32).astype(float)
    geometry = Geometry(
        size=tuple(int(s) for s in size),  # type: ignore[arg-type]
        spacing_mm=tuple(float(v) for v in spacing),  # type: ignore[arg-type]
        origin_mm=tuple(float(v) for v in origin),  # type: ignore[arg-type]
        direction=tuple(float(v) for v in np.diag(flip).ravel()),
    )
    axes = [(origin[i] + flip[i] * spacing[i] * np.arange(size[i]) - la_centre[i]).astype(np.float32) for i in range(3)]
    return geometry, [axes[0][None, None, :], axes[1][None, :, None], axes[2][:, None, None]]


def _anatomy(
    rng: np.random.Generator, field_rng: np.random.Generator, w: list[np.ndarray], shape_zyx: tuple[int, int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Tissue-class map and LA label from world coordinates `w` (broadcastable, relative to the LA centre)."""
    rot = _rotation(rng)
    q = [sum(np.float32(rot[j, k]) * w[j] for j in range(3)) for k in range(3)]  # heart frame, LPS-like
    f = _Frame(q, [a.ravel() for a in w], rot)
    # LA body volume drawn uniformly (radii jitter keeps it); appendage and vein stumps add ~10 mL.
    body_ml = rng.uniform(35.0, 120.0)
    s = (body_ml / 49.4) ** (1 / 3)
    aspect = rng.uniform(0.92, 1.08, 3)
    r_la = s * np.array([27.0, 19.0, 23.0]) * aspect / np.cbrt(np.prod(aspect))

    # Smooth random deformation of the LA body: long-wavelength transverse displacement waves, which are
    # divergence-free and so bend the shape without changing its volume much.
    qd = list(q)
    for _ in range(3):
        k = _unit(rng.normal(size=3)) * 2 * np.pi / rng.uniform(50, 90)
        e = _unit(np.cross(k, rng.normal(size=3)))
        wave = np.sin(sum(np.float32(k[i]) * q[i] for i in range(3)) + np.float32(rng.uniform(0, 2 * np.pi)))
        wave *= np.float32(rng.uniform(1.5, 3.0))
        qd = [qd[i] + np.float32(e[i]) * wave for i in range(3)]
    la = _ellipsoid(qd, (0, 0, 0), r_la)

    # Mitral orifice on the anterior-inferior-left LA wall; the LV long axis runs from it to the apex.
    mitral = np.array([0.3, -0.8, -0.5]) * r_la
    lv_axis = _unit(np.array([0.5, -0.5, -0.7]) + rng.normal(0, 0.08, 3))
    lv_side = sum(np.float32(lv_axis[i]) * (q[i] - np.float32(mitral[i])) for i in range(3))
    orifice = _capsule(f, mitral - 8 * lv_axis, mitral + 10 * lv_axis, 12.0 * s)

    # Pulmonary-vein stumps (labelled) leave posterior-laterally; the veins go on, unlabelled, into the lungs.
    veins = np.full(q[0].shape, np.inf, np.float32)
    for side, up in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
        ostium = np.array([0.72 * side, 0.5, 0.42 * up]) * r_la
        out = _unit(np.array([0.8 * side, 0.5, 0.3 * up]) + rng.normal(0, 0.12, 3))
        radius, length = rng.uniform(5.5, 7.5), rng.uniform(12, 18)
        end = ostium + length * out
        la = _smooth_union(la, _cylinder(f, ostium - 6 * out, end, radius))
        fork = end + rng.uniform(20, 30) * _unit(out + rng.normal(0, 0.3, 3))
        veins = np.minimum(veins, _capsule(f, end - 2 * out, fork, radius - 0.5, 3.5))
        for _ in range(2):  # segmental branches fanning into the lung
            tip = fork + rng.uniform(20, 35) * _unit(out + rng.normal(0, 0.6, 3))
            veins = np.minimum(veins, _capsule(f, fork, tip, 3.0, 1.5))

    # Appendage: a tapering curved finger from the anterolateral roof, hooking forward over the LV.
    neck_dir = _unit([0.75, -0.45, 0.45])
    neck = neck_dir / np.sqrt(np.sum((neck_dir / r_la) ** 2))
    ctrl = [neck - 5 * neck_dir, neck + s * np.array([14, -9, 8]) + rng.normal(0, 2, 3)]
    ctrl.append(ctrl[1] + s * np.array([7, -18, -10]) + rng.normal(0, 2, 3))
    ts = np.linspace(0, 1, 5)
    pts = [(1 - t) ** 2 * ctrl[0] + 2 * t * (1 - t) * ctrl[1] + t * t * ctrl[2] for t in ts]
    radii = np.linspace(rng.uniform(8, 10), rng.uniform(3.5, 5), 5)
    for i in range(4):
        la = _smooth_union(la, _capsule(f, pts[i], pts[i + 1], radii[i], radii[i + 1]), 3.0)
    la = np.maximum(np.minimum(la, orifice), lv_side)  # the mitral plane bounds the atrium

    lv_half, lv_rad = 40 * s * rng.uniform(0.95, 1.1), 22 * s * rng.uniform(0.95, 1.1)
    lv_centre = mitral + 0.75 * lv_half * lv_axis
    lv = np.maximum(_spheroid(q, lv_centre, lv_axis, lv_half, lv_rad), -lv_side)
    lv_all = np.minimum(lv, np.maximum(orifice, -lv_side))

    # Aortic root in front of the LA, ascending aorta up out of the field; the LVOT feeds it from the LV.
    ao_root = np.array([-0.2 * r_la[0], -(r_la[1] + 13 * s), -0.25 * r_la[2]]) + rng.normal(0, 2, 3)
    ao = np.minimum(
        _capsule(f, ao_root, ao_root + np.array([-8, -12, 150]), 13 * s * rng.uniform(0.9, 1.1)),
        _capsule(f, mitral + 18 * lv_axis, ao_root, 10 * s),
    )
    ao = np.maximum(ao, 1.5 - la)

    # Right atrium shares the septum with the LA: its wall follows the LA surface at sub-voxel thickness.
    r_ra = s * np.array([22.0, 22.0, 26.0]) * rng.uniform(0.9, 1.1, 3)
    ra_c = np.array([-(r_la[0] + 0.55 * r_ra[0]), -0.15 * r_la[1], -0.1 * r_la[2]])
    ra = np.minimum(_ellipsoid(q, ra_c, r_ra), _capsule(f, ra_c, ra_c + [-3, 6, 150], 10 * s))  # + SVC
    ra = np.minimum(ra, _capsule(f, ra_c, ra_c + [0, 8, -150], 12 * s))  # + IVC
    ra = np.maximum(np.maximum(ra, rng.uniform(0.4, 1.2) - la), 1.5 - ao)

    rv = _ellipsoid(q, lv_centre + s * np.array([-28, -22, 6]), s * np.array([20, 17, 32]))
    rv = np.maximum(np.maximum(rv, 9 - lv), np.maximum(2 - ra, 2 - ao))
    pa_fork = np.array([8.0, -4.0, r_la[2] + 18 * s])
    pa = np.minimum(
        _capsule(f, lv_centre + s * np.array([-14, -30, 22]), pa_fork, 13 * s),
        _capsule(f, pa_fork, [-70, 8, r_la[2] + 14 * s], 9 * s),
    )
    pa = np.minimum(pa, _capsule(f, pa_fork, [60, 15, r_la[2] + 16 * s], 9 * s))
    pa = np.maximum(np.maximum(pa, 2 - ao), np.maximum(1.5 - la, 1.5 - ra))
    veins = np.maximum(veins, np.maximum(1.5 - ra, 1.5 - pa))

    # Chest in the unrotated world frame: body, fat, lungs above the diaphragm, liver, spine, descending aorta.
    x, y, z = w
    body = ((x + 5) / 150) ** 2 + ((y + 20) / 105) ** 2
    inner = ((x + 5) / 135) ** 2 + ((y + 20) / 92) ** 2
    dome = -55 + 0.003 * x * x - 0.06 * x
    classes = np.zeros(shape_zyx, np.uint8)
    classes[np.broadcast_to(body <= 1, shape_zyx)] = FAT
    classes[np.broadcast_to(inner <= 1, shape_zyx)] = SOFT
    classes[(inner <= 1) & (z < dome) & (x < 15)] = LIVER
    for cx in (72, -72):
        lung = ((x - cx) / 58) ** 2 + ((y - 8) / 80) ** 2 + ((z - 30) / 120) ** 2
        classes[(lung <= 1) & (inner <= 0.85) & (z > dome)] = LUNG
    classes[np.broadcast_to((x + 5) ** 2 + (y - 45) ** 2 <= 16**2, shape_zyx)] = MARROW
    classes[np.broadcast_to((x + 5) ** 2 + (y - 72) ** 2 <= 7**2, shape_zyx)] = CSF
    dao_c = (r_la[0] * 0.8 + rng.uniform(-4, 4), r_la[1] + 15 + rng.uniform(-3, 3))
    dao = np.maximum(np.sqrt((x - dao_c[0]) ** 2 + (y - dao_c[1]) ** 2) - 11, 3 - la)

    heart = np.minimum(np.minimum(la, lv_all - 9), np.minimum(np.minimum(ra, rv), np.minimum(ao, pa)))
    classes[heart <= 8 * _smooth_field(field_rng, shape_zyx)] = FAT  # epicardial fat, patchy as in the AV grooves
    for d, wall in ((lv_all, 9.0), (rv, 3.0), (la, 2.0), (ra, 2.0), (ao, 2.0), (pa, 1.5), (veins, 1.0), (dao, 2.0)):
        classes[d <= wall] = MYO
    for d in (rv, ao, pa, ra, veins, dao, lv_all):
        classes[d <= 0] = BLOOD
    classes[lv <= 0] = LV_BLOOD
    perp = _unit(np.cross(lv_axis, rng.normal(size=3)))
    for turn in (1.0, -1.0):  # papillary muscles: dark pillars from the LV free wall towards the valve
        side = _unit(perp * turn + 0.5 * np.cross(lv_axis, perp))
        root = lv_centre + 0.1 * lv_half * lv_axis + 0.8 * lv_rad * side
        classes[_capsule(f, root, lv_centre - 0.35 * lv_half * lv_axis + 0.45 * lv_rad * side, 5.0, 3.0) <= 0] = MYO

    # One component, in case a carve-out pinched the atrium apart.
    parts, n = ndimage.label(la <= 0)
    label = (parts == np.argmax(np.bincount(parts.ravel())[1:]) + 1) if n > 1 else parts > 0
    classes[label] = LA_BLOOD
    return classes, label.astype(np.uint8)


def _smooth_field(rng: np.random.Generator, shape_zyx) -> np.ndarray:
    """Random field in [0, 1] varying over a few centimetres: tissue texture and patchy fat."""
    field = ndimage.gaussian_filter(rng.standard_normal([n // 8 + 2 for n in shape_zyx]), 1.0)
    field = (field - field.min()) / (np.ptp(field) + 1e-9)
    for axis, n in enumerate(shape_zyx):  # separable linear upsampling, as small matrix products
        c = field.shape[axis]
        up = np.stack([np.interp(np.linspace(0, c - 1, n), np.arange(c), row) for row in np.eye(c)], 1)
        field = np.moveaxis(np.tensordot(up, field, axes=(1, axis)), 0, axis)
    return field.astype(np.float32)


def _image(rng: np.random.Generator, field_rng: np.random.Generator, classes: np.ndarray) -> np.ndarray:
    """Partial-volume blur, smooth multiplicative bias, Rician noise, scaled to scanner-like int16."""
    signal = (_SIGNAL * np.r_[1.0, rng.uniform(0.9, 1.1, len(_SIGNAL) - 1)]).astype(np.float32)
    signal[[BLOOD, LA_BLOOD, LV_BLOOD]] = 1.0
    blur, bias_coef, bias_amp = rng.uniform(0.6, 0.9), rng.normal(0, 1, 9), rng.uniform(0.2, 0.3)
    noise_sd, scale = np.float32(rng.uniform(0.035, 0.06)), rng.uniform(1100, 1500)
    # Solid tissue is not uniform in real scans; blood stays uniform so chambers are indistinguishable.
    texture = 1 + np.float32(0.16) * (_smooth_field(field_rng, classes.shape) - np.float32(0.5))
    img = signal[classes] * np.where(classes >= BLOOD, np.float32(1), texture)
    img = ndimage.gaussian_filter(img, sigma=blur)
    u = [np.linspace(-1, 1, n, dtype=np.float32) for n in classes.shape]
    u = [u[0][:, None, None], u[1][None, :, None], u[2][None, None, :]]
    terms = [u[0], u[1], u[2], u[0] ** 2, u[1] ** 2, u[2] ** 2, u[0] * u[1], u[0] * u[2], u[1] * u[2]]
    poly = sum(np.float32(c) * t for c, t in zip(bias_coef, terms))
    poly = poly - poly.mean()
    img *= 1 + poly * np.float32(bias_amp / np.abs(poly).max())
    noise = field_rng.standard_normal((2, *classes.shape), dtype=np.float32) * noise_sd
    img = np.sqrt((img + noise[0]) ** 2 + noise[1] ** 2)  # magnitude of complex Gaussian data: Rician
    return np.clip(np.rint(img * scale), 0, 32767).astype(np.int16)


def _synthesize(seed: int, patient_index: int, shape_zyx=(80, 160, 160)) -> tuple[SyntheticCase, np.ndarray]:
    """The case and its hidden tissue-class map (for tests and debugging)."""
    if patient_index < 0 or len(shape_zyx) != 3 or min(shape_zyx) < 16:
        raise ValueError(f"bad synthetic case request: patient {patient_index}, shape {shape_zyx}")
    shape = tuple(int(n) for n in shape_zyx)
    # One stream per (seed, patient) so adding patients changes no existing one; array-sized draws come
    # from a child stream so that a case's anatomy does not depend on the requested shape.
    rng = np.random.default_rng([seed, patient_index])
    (field_rng,) = rng.spawn(1)
    geometry, w = _geometry(rng, shape)  # type: ignore[arg-type]
    classes, label = _anatomy(rng, field_rng, w, shape)  # type: ignore[arg-type]
    return SyntheticCase(image=_image(rng, field_rng, classes), label=label, geometry=geometry), classes


def synthesize_case(seed: int, patient_index: int, shape_zyx: tuple[int, int, int] = (80, 160, 160)) -> SyntheticCase:
    """One synthetic patient; identical output for identical (seed, patient_index, shape_zyx)."""
    return _synthesize(seed, patient_index, shape_zyx)[0]


def write_case(case: SyntheticCase, image_path: str | os.PathLike, label_path: str | os.PathLike) -> None:
    write_volume(case.image, case.geometry, image_path)
    write_volume(case.label, case.geometry, label_path)
