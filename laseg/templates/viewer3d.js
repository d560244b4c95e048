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
