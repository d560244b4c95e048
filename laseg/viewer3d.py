"""Offline 3D views of predicted and reference LA surfaces: a self-contained WebGL HTML page and a PNG render."""

from __future__ import annotations

import base64
import html
import json
import os
from dataclasses import dataclass

import numpy as np

from laseg.colours import PREDICTION_RGB, REFERENCE_RGB  # noqa: F401 (the viewer's surface colours)
from laseg.io import atomic_path
from laseg.mesh import SurfaceMesh, face_normals

MAX_WEBGL1_VERTICES = 65535  # Uint16 element indices: WebGL 1 without extensions


@dataclass(frozen=True)
class ViewedSurface:
    name: str  # "prediction" or "reference"
    mesh: SurfaceMesh
    rgb: tuple[float, float, float]
    volume_ml: float  # from the voxel count, as in the metrics table


def decimate(mesh: SurfaceMesh, max_triangles: int) -> SurfaceMesh:
    """Quadric-error decimation to at most max_triangles (open3d); smaller meshes come back unchanged."""
    if mesh.n_triangles <= max_triangles:
        return mesh
    import open3d as o3d  # heavy, and needs libusb at import: only load it when decimating

    full = o3d.geometry.TriangleMesh(
        o3d.utility.Vector3dVector(mesh.vertices_mm), o3d.utility.Vector3iVector(mesh.faces.astype(np.int32))
    )
    reduced = full.simplify_quadric_decimation(target_number_of_triangles=int(max_triangles))
    reduced.remove_unreferenced_vertices()
    return SurfaceMesh(np.asarray(reduced.vertices, dtype=np.float64), np.asarray(reduced.triangles, dtype=np.int64))


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def viewer_payload(surfaces: list[ViewedSurface]) -> dict:
    """What the page draws: per surface its name, colour, volume and little-endian base64 geometry."""
    items = []
    for surface in surfaces:
        if len(surface.mesh.vertices_mm) > MAX_WEBGL1_VERTICES:
            raise ValueError(
                f"{surface.name}: {len(surface.mesh.vertices_mm)} vertices, more than WebGL 1 can index; decimate first"
            )
        items.append(
            {
                "name": surface.name,
                "rgb": [float(c) for c in surface.rgb],
                "volume_ml": None if np.isnan(surface.volume_ml) else round(float(surface.volume_ml), 2),
                "triangles": surface.mesh.n_triangles,
                "positions": _b64(surface.mesh.vertices_mm.astype("<f4")),
                "indices": _b64(surface.mesh.faces.astype("<u2")),
            }
        )
    return {"surfaces": items}


def viewer_html(surfaces: list[ViewedSurface], title: str, subtitle: str) -> str:
    """One offline HTML page (no network, no libraries): rotate, zoom, pan, standard views, toggles."""
    data = json.dumps(viewer_payload(surfaces)).replace("<", "\\u003c")
    return (
        VIEWER_TEMPLATE.replace("__TITLE__", html.escape(title))
        .replace("__SUBTITLE__", html.escape(subtitle))
        .replace("__DATA__", data)
    )


def write_viewer_html(surfaces: list[ViewedSurface], title: str, subtitle: str, path: str | os.PathLike) -> None:
    with atomic_path(path, suffix=".html") as tmp:
        tmp.write_text(viewer_html(surfaces, title, subtitle), encoding="utf-8")


# Views as rows of the world-to-screen rotation: screen right, screen up, towards the viewer, each a
# world LPS direction. Anterior: the patient faces us, so their left is on our right.
STANDARD_VIEWS = {
    "anterior": ((1, 0, 0), (0, 0, 1), (0, -1, 0)),
    "posterior": ((-1, 0, 0), (0, 0, 1), (0, 1, 0)),
    "left": ((0, 1, 0), (0, 0, 1), (1, 0, 0)),
    "right": ((0, -1, 0), (0, 0, 1), (-1, 0, 0)),
    "superior": ((-1, 0, 0), (0, -1, 0), (0, 0, 1)),
    "inferior": ((1, 0, 0), (0, -1, 0), (0, 0, -1)),
}


def render_png(
    surfaces: list[ViewedSurface],
    title: str,
    path: str | os.PathLike,
    views: tuple[str, ...] = ("anterior", "posterior"),
) -> None:
    """A static shaded render (matplotlib) from standard views, axes in world mm, for the report."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    azimuth_elevation = {
        "anterior": (-90, 0),
        "posterior": (90, 0),
        "left": (0, 0),
        "right": (180, 0),
        "superior": (-90, 90),
        "inferior": (-90, -90),
    }
    shown = [s for s in surfaces if s.mesh.n_triangles]
    fig = plt.figure(figsize=(5.0 * len(views), 5.0))
    everything = np.concatenate([s.mesh.vertices_mm for s in shown]) if shown else np.zeros((1, 3))
    low, high = everything.min(axis=0), everything.max(axis=0)
    centre, half = (low + high) / 2, max(float((high - low).max()) / 2, 1.0) * 1.05
    for column, view in enumerate(views):
        ax = fig.add_subplot(1, len(views), column + 1, projection="3d")
        polygons, colours = [], []
        for surface in shown:
            # The reference is drawn translucent so the prediction inside it stays visible.
            alpha = 0.35 if surface.name == "reference" and len(shown) > 1 else 1.0
            mesh = surface.mesh
            normals = face_normals(mesh)
            azimuth, elevation = np.radians(azimuth_elevation[view])
            towards_viewer = np.array(
                [np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation)]
            )
            shade = 0.35 + 0.65 * np.abs(normals @ towards_viewer)
            rgba = np.column_stack([np.clip(np.outer(shade, surface.rgb), 0, 1), np.full(len(shade), alpha)])
            polygons.append(mesh.vertices_mm[mesh.faces])
            colours.append(rgba)
        if polygons:
            collection = Poly3DCollection(
                np.concatenate(polygons), facecolors=np.concatenate(colours), edgecolors="none", linewidths=0
            )
            ax.add_collection3d(collection)
        ax.set_xlim(centre[0] - half, centre[0] + half)
        ax.set_ylim(centre[1] - half, centre[1] + half)
        ax.set_zlim(centre[2] - half, centre[2] + half)
        ax.set_box_aspect((1, 1, 1), zoom=1.3)  # the default leaves a wide empty frame around the box
        ax.view_init(elev=azimuth_elevation[view][1], azim=azimuth_elevation[view][0])
        ax.set_proj_type("ortho")
        labels = ("x: right → left (mm)", "y: anterior → posterior (mm)", "z: inferior → superior (mm)")
        # The axis along the line of sight collapses to a point: unlabelled, it stays out of the way.
        depth_axis = {"anterior": 1, "posterior": 1, "left": 0, "right": 0, "superior": 2, "inferior": 2}[view]
        for axis, (label_setter, ticks_setter, label) in enumerate(
            zip((ax.set_xlabel, ax.set_ylabel, ax.set_zlabel), (ax.set_xticks, ax.set_yticks, ax.set_zticks), labels)
        ):
            if axis == depth_axis:
                ticks_setter([])
            else:
                label_setter(label, labelpad=8)
        ax.tick_params(labelsize=8)
        ax.set_title(f"{view} view", fontsize=11)
    handles = [
        Line2D(
            [], [], color=s.rgb, lw=6, label=f"{s.name}" + ("" if np.isnan(s.volume_ml) else f" ({s.volume_ml:.1f} mL)")
        )
        for s in surfaces
    ]
    if not shown:
        fig.text(0.5, 0.5, "empty segmentation: no surface", ha="center", fontsize=14)
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False, fontsize=11)
    fig.suptitle(title, fontsize=13)
    fig.subplots_adjust(left=0.03, right=0.95, top=0.88, bottom=0.13, wspace=0.2)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


VIEWER_TEMPLATE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style>
  html, body { margin: 0; height: 100%; background: #1b1e23; color: #e8e8e8; font: 14px/1.4 system-ui, sans-serif; overflow: hidden; }
  #view { position: absolute; inset: 0; width: 100%; height: 100%; display: block; cursor: grab; }
  #overlay { position: absolute; inset: 0; width: 100%; height: 100%; pointer-events: none; }
  #panel { position: absolute; top: 10px; left: 10px; background: rgba(20, 22, 26, 0.85); padding: 10px 12px; border-radius: 6px; max-width: 340px; }
  #panel h1 { font-size: 16px; margin: 0 0 2px; }
  #panel .sub { color: #b8bcc4; margin-bottom: 8px; }
  #panel label { display: block; margin: 3px 0; white-space: nowrap; }
  .swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px; margin-right: 6px; vertical-align: -1px; }
  .views button { background: #343a44; color: #e8e8e8; border: 1px solid #4c5563; border-radius: 4px; margin: 2px 2px 0 0; padding: 2px 7px; cursor: pointer; font-size: 12px; }
  .views button:hover { background: #46505e; }
  #help { position: absolute; bottom: 8px; right: 12px; color: #9aa0aa; font-size: 12px; text-align: right; }
  #status { color: #9aa0aa; font-size: 12px; margin-top: 6px; }
</style>
</head>
<body>
<canvas id="view"></canvas>
<canvas id="overlay"></canvas>
<div id="panel">
  <h1>__TITLE__</h1>
  <div class="sub">__SUBTITLE__</div>
  <div id="toggles"></div>
  <label>reference opacity <input id="opacity" type="range" min="0.1" max="1" step="0.05" value="0.45"></label>
  <div class="views">view:
    <button data-view="anterior">anterior</button><button data-view="posterior">posterior</button><button data-view="left">left</button><button data-view="right">right</button><button data-view="superior">superior</button><button data-view="inferior">inferior</button>
  </div>
  <div id="status">loading</div>
</div>
<div id="help">drag: rotate · wheel: zoom · shift-drag or right-drag: pan · double-click: reset<br>world coordinates in mm, LPS (x to patient's left, y posterior, z superior)</div>
<script id="surface-data" type="application/json">__DATA__</script>
<script>
"use strict";
(function () {
  const VIEWS = {
    anterior: [[1, 0, 0], [0, 0, 1], [0, -1, 0]],
    posterior: [[-1, 0, 0], [0, 0, 1], [0, 1, 0]],
    left: [[0, 1, 0], [0, 0, 1], [1, 0, 0]],
    right: [[0, -1, 0], [0, 0, 1], [-1, 0, 0]],
    superior: [[-1, 0, 0], [0, -1, 0], [0, 0, 1]],
    inferior: [[1, 0, 0], [0, -1, 0], [0, 0, -1]],
  };
  const statusLine = document.getElementById("status");
  const state = { ready: false, surfacesDrawn: [], triangles: 0 };
  window.viewerState = state;

  function decode(base64, Type) {
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    return new Type(bytes.buffer);
  }
  const data = JSON.parse(document.getElementById("surface-data").textContent);
  const canvas = document.getElementById("view");
  const overlay = document.getElementById("overlay");
  const gl = canvas.getContext("webgl", { antialias: true, preserveDrawingBuffer: true });
  if (!gl) {
    statusLine.textContent = "This browser has no WebGL: use the PNG render in the report instead.";
    return;
  }

  const vertexSource = `
    attribute vec3 a_position; attribute vec3 a_normal;
    uniform mat4 u_modelView; uniform mat4 u_projection;
    varying vec3 v_normal; varying vec3 v_position;
    void main() {
      vec4 p = u_modelView * vec4(a_position, 1.0);
      v_position = p.xyz;
      v_normal = mat3(u_modelView) * a_normal;
      gl_Position = u_projection * p;
    }`;
  const fragmentSource = `
    precision mediump float;
    uniform vec3 u_colour; uniform float u_alpha;
    varying vec3 v_normal; varying vec3 v_position;
    void main() {
      vec3 n = normalize(v_normal);
      vec3 toEye = normalize(-v_position);
      float diffuse = abs(dot(n, normalize(vec3(0.3, 0.5, 1.0))));
      float rim = abs(dot(n, toEye));
      float specular = pow(max(rim, 0.0), 24.0) * 0.25;
      vec3 colour = u_colour * (0.28 + 0.72 * diffuse) + vec3(specular);
      gl_FragColor = vec4(colour, u_alpha);
    }`;
  function compile(type, source) {
    const shader = gl.createShader(type);
    gl.shaderSource(shader, source);
    gl.compileShader(shader);
    if (!gl.getShaderParameter(shader, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(shader));
    return shader;
  }
  const program = gl.createProgram();
  gl.attachShader(program, compile(gl.VERTEX_SHADER, vertexSource));
  gl.attachShader(program, compile(gl.FRAGMENT_SHADER, fragmentSource));
  gl.linkProgram(program);
  if (!gl.getProgramParameter(program, gl.LINK_STATUS)) throw new Error(gl.getProgramInfoLog(program));
  const loc = {
    position: gl.getAttribLocation(program, "a_position"),
    normal: gl.getAttribLocation(program, "a_normal"),
    modelView: gl.getUniformLocation(program, "u_modelView"),
    projection: gl.getUniformLocation(program, "u_projection"),
    colour: gl.getUniformLocation(program, "u_colour"),
    alpha: gl.getUniformLocation(program, "u_alpha"),
  };

  function vertexNormals(positions, indices) {
    const normals = new Float32Array(positions.length);
    for (let t = 0; t < indices.length; t += 3) {
      const a = indices[t] * 3, b = indices[t + 1] * 3, c = indices[t + 2] * 3;
      const ux = positions[b] - positions[a], uy = positions[b + 1] - positions[a + 1], uz = positions[b + 2] - positions[a + 2];
      const vx = positions[c] - positions[a], vy = positions[c + 1] - positions[a + 1], vz = positions[c + 2] - positions[a + 2];
      const nx = uy * vz - uz * vy, ny = uz * vx - ux * vz, nz = ux * vy - uy * vx;  // area-weighted
      for (const i of [a, b, c]) { normals[i] += nx; normals[i + 1] += ny; normals[i + 2] += nz; }
    }
    return normals;
  }

  const low = [Infinity, Infinity, Infinity], high = [-Infinity, -Infinity, -Infinity];
  const surfaces = data.surfaces.map((s) => {
    const positions = decode(s.positions, Float32Array);
    const indices = decode(s.indices, Uint16Array);
    for (let i = 0; i < positions.length; i += 3) {
      for (let k = 0; k < 3; k++) { low[k] = Math.min(low[k], positions[i + k]); high[k] = Math.max(high[k], positions[i + k]); }
    }
    const buffers = { position: gl.createBuffer(), normal: gl.createBuffer(), index: gl.createBuffer() };
    gl.bindBuffer(gl.ARRAY_BUFFER, buffers.position);
    gl.bufferData(gl.ARRAY_BUFFER, positions, gl.STATIC_DRAW);
    gl.bindBuffer(gl.ARRAY_BUFFER, buffers.normal);
    gl.bufferData(gl.ARRAY_BUFFER, vertexNormals(positions, indices), gl.STATIC_DRAW);
    gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, buffers.index);
    gl.bufferData(gl.ELEMENT_ARRAY_BUFFER, indices, gl.STATIC_DRAW);
    return { ...s, buffers, count: indices.length, visible: true };
  });
  const drawable = surfaces.filter((s) => s.count > 0);
  const centre = drawable.length ? low.map((v, k) => (v + high[k]) / 2) : [0, 0, 0];
  const radius = drawable.length ? Math.max(1, Math.hypot(high[0] - low[0], high[1] - low[1], high[2] - low[2]) / 2) : 50;

  const toggles = document.getElementById("toggles");
  for (const s of surfaces) {
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox"; box.checked = true; box.id = "show-" + s.name;
    box.addEventListener("change", () => { s.visible = box.checked; draw(); });
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = "rgb(" + s.rgb.map((c) => Math.round(255 * c)).join(",") + ")";
    label.append(box, swatch, s.name + (s.volume_ml === null ? "" : " — " + s.volume_ml.toFixed(1) + " mL") + (s.count ? "" : " (empty)"));
    toggles.append(label);
  }
  const opacity = document.getElementById("opacity");
  opacity.addEventListener("input", draw);
  if (!surfaces.some((s) => s.name === "reference")) opacity.parentElement.style.display = "none";

  // Camera: rotation (rows: screen right, up, towards viewer, in world LPS), distance, pan.
  let rotation = VIEWS.anterior.map((r) => r.slice());
  const fov = Math.PI / 6;
  const homeDistance = radius / Math.sin(fov / 2) * 1.1;
  let distance = homeDistance, pan = [0, 0];

  function multiply(a, b) { return a.map((row) => [0, 1, 2].map((j) => row[0] * b[0][j] + row[1] * b[1][j] + row[2] * b[2][j])); }
  function axisRotation(axis, angle) {
    const c = Math.cos(angle), s = Math.sin(angle);
    if (axis === 0) return [[1, 0, 0], [0, c, -s], [0, s, c]];
    return [[c, 0, s], [0, 1, 0], [-s, 0, c]];
  }
  function orthonormalize(m) {
    const norm = (v) => { const l = Math.hypot(...v); return v.map((x) => x / l); };
    const x = norm(m[0]);
    const zRaw = m[2], d = zRaw[0] * x[0] + zRaw[1] * x[1] + zRaw[2] * x[2];
    const z = norm([zRaw[0] - d * x[0], zRaw[1] - d * x[1], zRaw[2] - d * x[2]]);
    const y = [z[1] * x[2] - z[2] * x[1], z[2] * x[0] - z[0] * x[2], z[0] * x[1] - z[1] * x[0]];
    return [x, y, z];
  }

  function resize() {
    const ratio = window.devicePixelRatio || 1;
    for (const c of [canvas, overlay]) {
      c.width = Math.max(1, Math.round(c.clientWidth * ratio));
      c.height = Math.max(1, Math.round(c.clientHeight * ratio));
    }
  }

  function drawAxes() {
    const ctx = overlay.getContext("2d");
    const ratio = window.devicePixelRatio || 1;
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, overlay.clientWidth, overlay.clientHeight);
    const ox = 60, oy = overlay.clientHeight - 60, length = 38;
    const axes = [["L", [1, 0, 0], "#ff8a65"], ["P", [0, 1, 0], "#81c784"], ["S", [0, 0, 1], "#64b5f6"]];
    const projected = axes.map(([name, w, colour]) => {
      const sx = rotation[0][0] * w[0] + rotation[0][1] * w[1] + rotation[0][2] * w[2];
      const sy = rotation[1][0] * w[0] + rotation[1][1] * w[1] + rotation[1][2] * w[2];
      const sz = rotation[2][0] * w[0] + rotation[2][1] * w[1] + rotation[2][2] * w[2];
      return { name, colour, sx, sy, sz };
    }).sort((a, b) => a.sz - b.sz);
    ctx.lineWidth = 2.5; ctx.font = "bold 13px system-ui, sans-serif"; ctx.textAlign = "center"; ctx.textBaseline = "middle";
    for (const a of projected) {
      if (Math.hypot(a.sx, a.sy) < 0.2) continue;  // along the line of sight: a label on the origin helps nobody
      ctx.strokeStyle = a.colour; ctx.fillStyle = a.colour;
      ctx.beginPath(); ctx.moveTo(ox, oy); ctx.lineTo(ox + a.sx * length, oy - a.sy * length); ctx.stroke();
      ctx.fillText(a.name, ox + a.sx * (length + 11), oy - a.sy * (length + 11));
    }
  }

  function draw() {
    resize();
    gl.viewport(0, 0, canvas.width, canvas.height);
    gl.clearColor(0.106, 0.118, 0.137, 1);
    gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
    gl.enable(gl.DEPTH_TEST);
    gl.useProgram(program);
    const aspect = canvas.width / canvas.height, f = 1 / Math.tan(fov / 2);
    const near = Math.max(distance - 3 * radius, distance * 0.01), far = distance + 3 * radius;
    gl.uniformMatrix4fv(loc.projection, false, new Float32Array([
      f / aspect, 0, 0, 0, 0, f, 0, 0, 0, 0, (far + near) / (near - far), -1, 0, 0, (2 * far * near) / (near - far), 0]));
    const r = rotation;
    const t = [0, 1, 2].map((i) => -(r[i][0] * centre[0] + r[i][1] * centre[1] + r[i][2] * centre[2]));
    const modelView = new Float32Array([
      r[0][0], r[1][0], r[2][0], 0, r[0][1], r[1][1], r[2][1], 0, r[0][2], r[1][2], r[2][2], 0,
      t[0] + pan[0], t[1] + pan[1], t[2] - distance, 1]);
    gl.uniformMatrix4fv(loc.modelView, false, modelView);
    const shown = drawable.filter((s) => s.visible);
    const alphaOf = (s) => (s.name === "reference" && shown.length > 1 ? parseFloat(opacity.value) : 1.0);
    // Opaque surfaces first; translucent ones after, without writing depth, so both stay visible.
    const ordered = shown.filter((s) => alphaOf(s) >= 1).concat(shown.filter((s) => alphaOf(s) < 1));
    for (const s of ordered) {
      const alpha = alphaOf(s);
      if (alpha < 1) { gl.enable(gl.BLEND); gl.blendFunc(gl.SRC_ALPHA, gl.ONE_MINUS_SRC_ALPHA); gl.depthMask(false); }
      else { gl.disable(gl.BLEND); gl.depthMask(true); }
      gl.bindBuffer(gl.ARRAY_BUFFER, s.buffers.position);
      gl.enableVertexAttribArray(loc.position);
      gl.vertexAttribPointer(loc.position, 3, gl.FLOAT, false, 0, 0);
      gl.bindBuffer(gl.ARRAY_BUFFER, s.buffers.normal);
      gl.enableVertexAttribArray(loc.normal);
      gl.vertexAttribPointer(loc.normal, 3, gl.FLOAT, false, 0, 0);
      gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, s.buffers.index);
      gl.uniform3fv(loc.colour, s.rgb);
      gl.uniform1f(loc.alpha, alpha);
      gl.drawElements(gl.TRIANGLES, s.count, gl.UNSIGNED_SHORT, 0);
    }
    gl.depthMask(true);
    drawAxes();
    state.surfacesDrawn = ordered.map((s) => s.name);
    state.triangles = ordered.reduce((n, s) => n + s.count / 3, 0);
    const error = gl.getError();
    if (error !== gl.NO_ERROR) throw new Error("WebGL error " + error);
    statusLine.textContent = drawable.length ? state.triangles + " triangles drawn" : "empty segmentation: nothing to draw";
    state.ready = true;
  }

  function setView(name) { rotation = VIEWS[name].map((r) => r.slice()); distance = homeDistance; pan = [0, 0]; draw(); }
  for (const button of document.querySelectorAll("[data-view]")) button.addEventListener("click", () => setView(button.dataset.view));
  canvas.addEventListener("dblclick", () => setView("anterior"));
  canvas.addEventListener("contextmenu", (e) => e.preventDefault());
  let drag = null;
  canvas.addEventListener("pointerdown", (e) => { drag = { x: e.clientX, y: e.clientY, pan: e.shiftKey || e.button === 2 }; canvas.setPointerCapture(e.pointerId); canvas.style.cursor = "grabbing"; });
  canvas.addEventListener("pointerup", () => { drag = null; canvas.style.cursor = "grab"; });
  canvas.addEventListener("pointermove", (e) => {
    if (!drag) return;
    const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
    drag.x = e.clientX; drag.y = e.clientY;
    if (drag.pan) {
      const mmPerPixel = 2 * distance * Math.tan(fov / 2) / canvas.clientHeight;
      pan = [pan[0] + dx * mmPerPixel, pan[1] - dy * mmPerPixel];
    } else {
      rotation = orthonormalize(multiply(axisRotation(0, dy * 0.01), multiply(axisRotation(1, dx * 0.01), rotation)));
    }
    draw();
  });
  canvas.addEventListener("wheel", (e) => {
    e.preventDefault();
    distance = Math.min(homeDistance * 8, Math.max(radius * 0.3, distance * Math.exp(e.deltaY * 0.0015)));
    draw();
  }, { passive: false });
  window.addEventListener("resize", draw);
  draw();
})();
</script>
</body>
</html>
"""
