// glassnet's page: draw a digit, see every layer, click a neuron, take one training step.
// Every number comes from the server, which reads it from what glassnet's layers computed.
"use strict";

const state = {
  model: null,       // the model's name
  info: null,        // /api/info
  words: {},         // the page's words in the chosen language
  lang: "en",        // the chosen language's code, sent with a step for its words
  image: null,       // the 28×28 image the network saw last (rows of numbers)
  seen: null,        // the last /api/see answer
  busy: false,       // a drawing is on its way to the server
  dirty: false,      // the drawing changed while it was
  selected: null,    // [layer, neuron] shown in the neuron panel
  labelChosen: false, // the true label was chosen by hand: answers no longer set it
  drawing: 0,        // counts cleared drawings: an answer for an earlier one is dropped
};

const $ = (id) => document.getElementById(id);

// ---- words -------------------------------------------------------------------------------------

function t(text, values = {}) {
  const said = state.words[text] || text;
  return said.replace(/\{(\w+)\}/g, (_, name) => (name in values ? values[name] : `{${name}}`));
}

async function setLanguage(code) {
  const answer = await fetch(`/api/messages?lang=${encodeURIComponent(code)}`);
  state.words = await answer.json();
  state.lang = code;
  document.documentElement.lang = code.replace("_", "-");
  for (const element of document.querySelectorAll("[data-i18n]")) {
    element.textContent = t(element.dataset.i18n);
  }
  localStorage.setItem("glassnet-lang", code);
  if (state.seen) showLayers(state.seen);
  if (state.selected) showNeuron(...state.selected, false);
  drawDeck();
  drawDescent();
  if (state.info) noteModel();
}

// ---- talking to the server ---------------------------------------------------------------------

async function ask(url, options = {}) {
  const answer = await fetch(url, options);
  const body = await answer.json();
  if (!answer.ok) throw new Error(body.error || answer.statusText);
  $("error").textContent = "";
  return body;
}

function postJSON(url, data) {
  return ask(url, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ model: state.model, image: state.image, ...data }),
  });
}

function fail(error) {
  $("error").textContent = error.message;
}

// ---- drawing -----------------------------------------------------------------------------------

const draw = $("draw");
const pen = draw.getContext("2d");
let drawing = false;
let inked = false;

// A model that reads small images says so: the 8×8 digits model trained where MNIST was absent.
function noteModel() {
  const note = $("model-note");
  const side = state.model && state.info.models[state.model] ? state.info.models[state.model].side : 28;
  note.hidden = side >= 28;
  note.textContent = note.hidden ? "" : t("This model reads {side}×{side} images: a drawn digit loses most of its shape at that size, so expect mistakes. A model trained on MNIST (glassnet train) reads 28×28.", { side });
}

function clearCanvas() {
  state.drawing += 1;  // answers still on their way are for the drawing just cleared
  pen.fillStyle = "#000";
  pen.fillRect(0, 0, draw.width, draw.height);
  inked = false;
  state.image = state.seen = state.selected = null;
  state.labelChosen = false;
  $("prediction").textContent = "–";
  $("layers").textContent = "";
  $("seen").getContext("2d").clearRect(0, 0, 112, 112);
  $("step-result").textContent = "";
  const hint = document.createElement("p");  // the neuron shown belonged to the last drawing
  hint.className = "hint";
  hint.textContent = t("Click a neuron in a layer.");
  $("neuron").replaceChildren(hint);
}

function point(event) {
  const box = draw.getBoundingClientRect();
  return [(event.clientX - box.left) * draw.width / box.width,
          (event.clientY - box.top) * draw.height / box.height];
}

draw.addEventListener("pointerdown", (event) => {
  drawing = true;
  draw.setPointerCapture(event.pointerId);
  const [x, y] = point(event);
  pen.beginPath();
  pen.moveTo(x, y);
  pen.lineTo(x + 0.1, y);
  stroke();
});
draw.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  const [x, y] = point(event);
  pen.lineTo(x, y);
  stroke();
});
for (const name of ["pointerup", "pointercancel"]) {
  draw.addEventListener(name, () => { drawing = false; send(); });
}

function stroke() {
  pen.strokeStyle = "#fff";
  pen.lineWidth = 20;
  pen.lineCap = pen.lineJoin = "round";
  pen.stroke();
  inked = true;
  send();
}

// Sent as you draw: one request at a time, the newest drawing next.
function send() {
  if (!inked || !state.model) return;
  if (state.busy) { state.dirty = true; return; }
  state.busy = true;
  draw.toBlob((blob) => see(blob).finally(() => {
    state.busy = false;
    if (state.dirty) { state.dirty = false; send(); }
  }), "image/png");
}

async function see(blob) {
  const drawing = state.drawing;
  try {
    const answer = await ask(`/api/see?model=${encodeURIComponent(state.model)}`,
                             { method: "POST", body: blob });
    if (drawing !== state.drawing) return;  // cleared (or another model chosen) meanwhile
    state.seen = answer;
    state.image = answer.image;
    showSeen(answer.image);
    showPrediction(answer);
    showLayers(answer);
    if (!state.labelChosen) $("label").value = answer.prediction;
    if (state.selected) showNeuron(...state.selected, false);
  } catch (error) { fail(error); }
}

const MAX_PHOTO_MB = 10;  // as the server's MAX_IMAGE_BYTES

function photo(file) {
  if (!file) return;
  if (file.size > MAX_PHOTO_MB * 1024 * 1024) {  // said here, before a long upload is refused
    fail(new Error(t("The photo is {size} MB; the page takes images up to {limit} MB. Crop it, or save it smaller.", {
      size: (file.size / 1e6).toFixed(1), limit: MAX_PHOTO_MB,
    })));
    return;
  }
  const picture = new Image();
  picture.onload = () => {  // shown on the canvas; the file itself goes to the server
    const scale = Math.min(draw.width / picture.width, draw.height / picture.height);
    pen.fillStyle = "#fff";
    pen.fillRect(0, 0, draw.width, draw.height);
    pen.drawImage(picture, 0, 0, picture.width * scale, picture.height * scale);
    URL.revokeObjectURL(picture.src);
  };
  picture.src = URL.createObjectURL(file);
  inked = false;  // the photo itself goes to the server, not the canvas's copy of it
  see(file);
}

$("clear").addEventListener("click", clearCanvas);
$("photo").addEventListener("change", (event) => photo(event.target.files[0]));
draw.addEventListener("dragover", (event) => event.preventDefault());
draw.addEventListener("drop", (event) => {
  event.preventDefault();
  photo(event.dataTransfer.files[0]);
});

// ---- what the network sees, and says -----------------------------------------------------------

function grey(canvas, rows, scale = 1, low = null, high = null) {
  const h = rows.length, w = rows[0].length;
  const flat = rows.flat();
  low = low ?? Math.min(...flat);
  high = high ?? Math.max(...flat);
  const span = high > low ? high - low : 1;
  canvas.width = w; canvas.height = h;
  const context = canvas.getContext("2d");
  const pixels = context.createImageData(w, h);
  flat.forEach((v, i) => {
    const shade = Math.round(255 * Math.min(1, Math.max(0, (v - low) / span)));
    pixels.data.set([shade, shade, shade, 255], 4 * i);
  });
  context.putImageData(pixels, 0, 0);
  canvas.style.width = `${w * scale}px`;
  canvas.style.height = `${h * scale}px`;
}

function showSeen(image) {
  grey($("seen"), image, 4, 0, 1);
}

function percent(p) {
  return `${(100 * p).toFixed(1)} %`;
}

function showPrediction(answer) {
  const p = answer.probabilities[answer.prediction];
  $("prediction").innerHTML = "";
  $("prediction").append(`${answer.prediction} `);
  const small = document.createElement("small");
  small.textContent = t("{p} sure", { p: percent(p) });
  $("prediction").append(small);
}

function showLayers(answer) {
  const box = $("layers");
  box.textContent = "";
  for (const layer of answer.layers) {
    const panel = document.createElement("div");
    panel.className = "panel";
    panel.dataset.testid = "layer";
    const title = document.createElement("h4");
    const kind = layer.activation ? `${layer.kind}, ${layer.activation}` : layer.kind;
    title.textContent = `${layer.number}. ${layer.name} `;
    const small = document.createElement("small");
    small.textContent = `(${kind}) ${layer.shape.join("×")}` +
      (layer.view === "maps" && layer.channels > layer.maps.length
        ? ` · ${t("the first {n} feature maps", { n: layer.maps.length })}` : "");
    title.append(small);
    panel.append(title);
    if (layer.view === "output") panel.append(bars(layer, answer));
    else if (layer.view === "maps") panel.append(maps(layer));
    else panel.append(cells(layer));
    box.append(panel);
  }
}

function pick(layer, index) {
  if (!layer.neurons) return null;
  return () => showNeuron(layer.number, index);
}

function cells(layer) {
  const strip = document.createElement("div");
  strip.className = "cells";
  const top = Math.max(...layer.values.map(Math.abs)) || 1;
  layer.values.forEach((v, i) => {
    const cell = document.createElement("div");
    cell.className = "cell";
    const shade = Math.round(255 * (1 - Math.abs(v) / top));
    cell.style.background = v >= 0 ? `rgb(${shade},${shade},255)` : `rgb(255,${shade},${shade})`;
    cell.title = `${i}: a = ${fmt(v)}`;
    const click = pick(layer, i);
    if (click) cell.addEventListener("click", click);
    else cell.classList.add("inert");  // no neuron here: nothing to click
    strip.append(cell);
  });
  return strip;
}

function maps(layer) {
  const row = document.createElement("div");
  row.className = "maps";
  layer.maps.forEach((map, i) => {
    const canvas = document.createElement("canvas");
    canvas.className = "map";
    grey(canvas, map);
    canvas.style.width = canvas.style.height = "48px";
    canvas.title = `${t("filter")} ${i}`;
    const click = pick(layer, i);
    if (click) canvas.addEventListener("click", click);
    else canvas.classList.add("inert");
    row.append(canvas);
  });
  return row;
}

function bars(layer, answer) {
  const grid = document.createElement("div");
  grid.className = "bars";
  layer.values.forEach((p, digit) => {
    const label = document.createElement("span");
    label.textContent = digit;
    const track = document.createElement("div");
    const bar = document.createElement("div");
    bar.className = digit === answer.prediction ? "bar best" : "bar";
    bar.style.width = `${100 * p}%`;
    const click = pick(layer, digit);
    if (click) bar.addEventListener("click", click);
    else bar.classList.add("inert");
    track.append(bar);
    const value = document.createElement("span");
    value.textContent = percent(p);
    grid.append(label, track, value);
  });
  return grid;
}

// ---- one neuron --------------------------------------------------------------------------------

// One number as the glass box prints it: 4 decimals, powers of ten where decimals would hide it.
// The exponent's sign is a non-breaking hyphen: a line may not end inside "2.255e-21".
function fmt(v) {
  if (v === 0) return "0";
  if (Math.abs(v) >= 1e4 || Math.abs(v) < 1e-3) return v.toExponential(3).replace("e-", "e\u2011");
  return v.toFixed(4);
}

async function showNeuron(layer, index, reveal = true) {
  if (!state.image) return;
  state.selected = [layer, index];
  try {
    const n = await postJSON("/api/neuron", { layer, neuron: index });
    const box = $("neuron");
    box.textContent = "";
    const head = document.createElement("p");
    head.className = "formula";
    const where = n.position ? ` · ${t("at row {r}, column {c}, where it answers most", { r: n.position[0], c: n.position[1] })}` : "";
    head.textContent = `${t("layer")} ${n.layer} (${n.name}), ${n.position ? t("filter") : t("neuron")} ${n.index}${where}`;
    box.append(head);
    const formula = document.createElement("p");
    formula.className = "formula";
    formula.textContent = `z = w·a + b = Σ w_j·a_j + b  (${t("{n} terms; the largest:", { n: n.n_inputs })})`;
    box.append(formula);
    const table = document.createElement("table");
    table.innerHTML = "<tr><th>j</th><th>w_j</th><th>a_j</th><th>w_j·a_j</th></tr>";
    for (const term of n.terms) {
      const row = table.insertRow();
      for (const v of [term.j, fmt(term.w), fmt(term.a), fmt(term.wa)]) row.insertCell().textContent = v;
    }
    const rest = table.insertRow();
    rest.insertCell().textContent = "…";
    rest.insertCell(); rest.insertCell();
    rest.insertCell().textContent = fmt(n.rest);
    box.append(table);
    const result = document.createElement("p");
    result.className = "formula";
    result.textContent = `b = ${fmt(n.b)}    z = ${fmt(n.z)}    a = ${n.activation}(z) = ${fmt(n.a)}`;
    box.append(result);
    if (reveal) $("neuron-section").scrollIntoView({ block: "nearest" });  // where the student looks
  } catch (error) { fail(error); }
}

// ---- one training step -------------------------------------------------------------------------

async function trainingStep() {
  if (!state.image) { fail(new Error(t("Draw a digit first."))); return; }
  try {
    const s = await postJSON("/api/step", {
      label: Number($("label").value), learning_rate: Number($("step-rate").value),
      lang: state.lang,
    });
    const box = $("step-result");
    box.textContent = "";
    const loss = document.createElement("p");
    loss.className = "formula";
    loss.textContent = `C = ${fmt(s.C)} → ${fmt(s.C_new)}`;
    box.append(loss);
    if (s.tiny_loss) box.append(tinyLoss(s));
    const table = document.createElement("table");
    table.className = "step-table";
    const heads = [t("layer"), t("its backward pass"), "‖∂C/∂a‖", "‖∂C/∂z‖", "‖∂C/∂W‖",
                   t("finite differences"), `W ← W − η·∂C/∂W (${t("the weight that moves most")})`];
    table.createTHead().insertRow().append(...heads.map((text) => {
      const th = document.createElement("th");
      th.textContent = text;
      return th;
    }));
    const body = table.createTBody();
    for (const layer of [...s.layers].reverse()) {
      const row = body.insertRow();
      const c = (column, text, cls = "") => {
        const cell = row.insertCell();
        cell.textContent = text;
        cell.className = cls;
        cell.dataset.label = heads[column];  // shown beside the value on a phone
        if (!text) cell.classList.add("empty");
        return cell;
      };
      c(0, `${layer.number}. ${layer.name} (${layer.kind})`, "text");
      c(1, layer.rule, "text rule");
      c(2, layer.dC_da_norm === undefined ? "" : fmt(layer.dC_da_norm));
      c(3, layer.dC_dz_norm === undefined ? "" : fmt(layer.dC_dz_norm));
      c(4, layer.dC_dW_norm === undefined ? "" : fmt(layer.dC_dW_norm));
      const checked = layer.ok !== undefined && layer.ok !== null;
      c(5, checked ? `${fmt(layer.error)} ${layer.ok ? "✓" : "✗"}` : "",
        checked ? (layer.ok ? "ok" : "bad") : "");
      const u = layer.update;
      c(6, u ? `${u.name}[${u.index.join(", ")}]: ${fmt(u.w)} − ${s.learning_rate} × ${fmt(u.grad)} = ${fmt(u.w_new)}` : "", "text formula");
    }
    box.append(table);
    const note = document.createElement("p");
    note.className = "hint";
    note.textContent = t("✓: backpropagation in float64 agrees with finite differences to a relative error of at most {tolerance}.", { tolerance: s.tolerance });
    box.append(note);
    const output = s.layers[s.layers.length - 1];
    if (output.case_1 && output.dC_dz) {
      const line = document.createElement("p");
      line.className = "formula";
      line.textContent = `${t("output layer")}: ∂C/∂z = a − y = [${output.dC_dz.map(fmt).join(", ")}]`;
      box.append(line);
    }
    const after = document.createElement("p");
    after.dataset.testid = "step-prediction";
    const p = s.probabilities[s.label];
    after.textContent = t("After the step: {digit} ({p} sure); the true label {label} now has {q}.", {
      digit: s.prediction, p: percent(s.probabilities[s.prediction]), label: s.label, q: percent(p),
    });
    box.append(after);
    box.scrollIntoView({ block: "nearest" });
  } catch (error) { fail(error); }
}

// C ≈ 0: say so, and offer the network's second choice as the label to try instead.
function tinyLoss(s) {
  const line = document.createElement("p");
  line.className = "notice";
  line.dataset.testid = "tiny-loss";
  line.textContent = t("C ≈ 0: the network already gives {label} almost all of its probability, so every gradient and the update are tiny ({dtype} may not even change W). The checks still hold. ", { label: s.label, dtype: s.dtype });
  if (s.suggested_label !== null) {
    const button = document.createElement("button");
    button.textContent = t("Try label {label}, its second choice", { label: s.suggested_label });
    button.addEventListener("click", () => {
      $("label").value = s.suggested_label;
      state.labelChosen = true;
      trainingStep();
    });
    line.append(button);
  }
  return line;
}

$("step").addEventListener("click", trainingStep);
$("label").addEventListener("change", () => { state.labelChosen = true; });

// ---- a short training run ----------------------------------------------------------------------

// Axes with values: a frame, and ticks along each side with their numbers.
function ticks(low, high, count = 5) {
  const step = (high - low) / (count - 1) || 1;
  return Array.from({ length: count }, (_, i) => low + i * step);
}

function short(v) {
  return Math.abs(v) >= 1000 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2);
}

function axes(context, box, [x0, x1], [y0, y1], xName, yName) {
  context.strokeStyle = "#d9dee7";
  context.strokeRect(box.left, box.top, box.width, box.height);
  context.fillStyle = "#5b6678";
  context.font = "11px system-ui";
  context.textAlign = "center";
  for (const v of ticks(x0, x1)) {
    const x = box.left + box.width * (v - x0) / ((x1 - x0) || 1);
    context.fillText(short(v), x, box.top + box.height + 14);
  }
  context.fillText(xName, box.left + box.width / 2, box.top + box.height + 28);
  context.textAlign = "right";
  for (const v of ticks(y0, y1)) {
    const y = box.top + box.height * (1 - (v - y0) / ((y1 - y0) || 1));
    context.fillText(short(v), box.left - 4, y + 4);
  }
  context.save();
  context.translate(12, box.top + box.height / 2);
  context.rotate(-Math.PI / 2);
  context.textAlign = "center";
  context.fillText(yName, 0, 0);
  context.restore();
  context.textAlign = "left";
}

// A chart drawn at the size it is shown, so that its words stay legible on a phone.
function fitted(id, aspect) {
  const canvas = $(id);
  const width = Math.round(canvas.clientWidth) || canvas.width;
  if (canvas.width !== width) {
    canvas.width = width;
    canvas.height = Math.round(width * aspect);
  }
  return canvas;
}

function drawCurves(points, total) {
  const canvas = fitted("curves", 220 / 560);
  const context = canvas.getContext("2d");
  const box = { left: 52, top: 10, width: canvas.width - 64, height: canvas.height - 48 };
  context.clearRect(0, 0, canvas.width, canvas.height);
  const top = Math.max(0.5, ...points.map((p) => p.loss));
  axes(context, box, [0, total], [0, top], t("training step"), t("loss"));
  const X = (step) => box.left + box.width * step / total;
  const line = (key, scale, colour) => {
    context.strokeStyle = colour;
    context.lineWidth = 2;
    context.beginPath();
    points.forEach((p, i) => {
      const y = box.top + box.height * (1 - p[key] / scale);
      i ? context.lineTo(X(p.step), y) : context.moveTo(X(p.step), y);
    });
    context.stroke();
  };
  line("loss", top, "#d9480f");
  line("accuracy", 1, "#1f6feb");
  context.font = "12px system-ui";
  context.fillStyle = "#d9480f";
  context.fillText(`${t("loss")} (0–${top.toFixed(2)})`, box.left + 6, box.top + 14);
  context.fillStyle = "#1f6feb";
  context.fillText(`${t("accuracy")} (0–1)`, box.left + 6, box.top + 30);
}

async function trainingRun() {
  const button = $("train");
  button.disabled = true;
  const status = $("train-status");
  const points = [];
  let total = 1;
  try {
    const answer = await fetch("/api/train", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        model: state.model, samples: Number($("train-samples").value),
        epochs: Number($("train-epochs").value),
      }),
    });
    if (!answer.ok) throw new Error((await answer.json()).error);
    const reader = answer.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      const lines = buffer.split("\n");
      buffer = lines.pop();
      for (const line of lines.filter(Boolean)) {
        const event = JSON.parse(line);
        if (event.error) throw new Error(event.error);
        if (event.start) total = event.steps * event.epochs;
        if (event.batch) {
          points.push({ step: event.epoch * (total / Number($("train-epochs").value)) + event.batch,
                        loss: event.loss, accuracy: event.accuracy });
          drawCurves(points, total);
          status.textContent = t("Epoch {epoch}: loss {loss}, accuracy {accuracy}", {
            epoch: event.epoch + 1, loss: event.loss.toFixed(4), accuracy: percent(event.accuracy),
          });
        }
        if (event.done) {
          status.textContent = t("Done: {accuracy} right on 2,000 test images. Draw on it: it is now the model “{model}”.", {
            accuracy: percent(event.test_accuracy), model: event.model,
          });
          if (![...$("model").options].some((o) => o.value === event.model)) {
            $("model").add(new Option(event.model, event.model));
          }
          $("model").value = state.model = event.model;
          clearCanvas();
        }
      }
    }
  } catch (error) { fail(error); }
  button.disabled = false;
}

$("train").addEventListener("click", trainingRun);

// ---- the deck's worked example -----------------------------------------------------------------

let deckNumbers = null;

async function drawDeck() {
  try {
    deckNumbers = deckNumbers || await ask("/api/deck");
  } catch (error) { fail(error); return; }
  const d = deckNumbers;
  const svg = $("deck");
  const ns = "http://www.w3.org/2000/svg";
  svg.textContent = "";
  const add = (tag, attrs, text) => {
    const el = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    if (text !== undefined) el.textContent = text;
    svg.append(el);
    return el;
  };
  const xs = [50, 250, 450, 650];
  const ys = [90, 210];
  for (let l = 0; l < 3; l++) {
    const layer = d.layers[l];
    for (let i = 0; i < 2; i++) {
      for (let j = 0; j < 2; j++) {
        add("line", { x1: xs[l] + 28, y1: ys[j], x2: xs[l + 1] - 28, y2: ys[i], class: "edge" });
        const mx = xs[l] + 28 + (xs[l + 1] - xs[l] - 56) * (i === j ? 0.3 : 0.22);
        const my = ys[j] + (ys[i] - ys[j]) * (i === j ? 0.3 : 0.22) - 4;
        add("text", { x: mx, y: my, class: "weight" }, `${layer.W[i][j]}`);
      }
    }
  }
  d.x.forEach((v, j) => {
    add("circle", { cx: xs[0], cy: ys[j], r: 26, class: "node" });
    add("text", { x: xs[0] - 18, y: ys[j] + 4 }, `x=${v}`);
  });
  d.layers.forEach((layer, l) => {
    for (let i = 0; i < 2; i++) {
      add("circle", { cx: xs[l + 1], cy: ys[i], r: 26, class: "node" });
      add("text", { x: xs[l + 1] - 22, y: ys[i] + 4 }, layer.a[i].toFixed(3));
      add("text", { x: xs[l + 1] - 40, y: ys[i] + 44 }, `z=${layer.z[i].toFixed(3)} b=${layer.b[i]}`);
      add("text", { x: xs[l + 1] - 40, y: ys[i] + 58, class: "weight" }, `∂C/∂z=${layer.dC_dz[i].toFixed(4)}`);
    }
  });
  add("text", { x: 10, y: 20 }, t("a = σ(z) in each circle; W on the edges; y = ({y})", { y: d.y.join(", ") }));
  $("deck-loss").textContent = t("C = {C} before the step, {C_new} after it (η = {eta}).", {
    C: d.C.toFixed(4), C_new: d.C_new.toFixed(4), eta: d.learning_rate,
  });
}

// ---- gradient descent --------------------------------------------------------------------------

async function drawDescent() {
  const rate = 10 ** Number($("descent-rate").value);
  $("descent-rate-value").textContent = `η = ${rate.toPrecision(2)}`;
  let walk;
  try {
    walk = await ask(`/api/descent?curve=${$("curve").value}&learning_rate=${rate}&steps=60`);
  } catch (error) { fail(error); return; }
  const canvas = fitted("descent", 260 / 560);
  const context = canvas.getContext("2d");
  context.clearRect(0, 0, canvas.width, canvas.height);
  const box = { left: 52, top: 10, width: canvas.width - 64, height: canvas.height - 48 };
  const ws = walk.curve.map((p) => p[0]);
  const cs = walk.curve.map((p) => p[1]);
  const [w0, w1] = [Math.min(...ws), Math.max(...ws)];
  const [c0, c1] = [Math.min(...cs), Math.max(...cs)];
  axes(context, box, [w0, w1], [c0, c1], "w", "C(w)");
  const X = (w) => box.left + box.width * (w - w0) / (w1 - w0);
  const Y = (c) => box.top + box.height * (1 - (c - c0) / ((c1 - c0) || 1));
  context.strokeStyle = "#9aa5b5";
  context.beginPath();
  walk.curve.forEach(([w, c], i) => (i ? context.lineTo(X(w), Y(c)) : context.moveTo(X(w), Y(c))));
  context.stroke();
  const inside = walk.steps.filter(([w, c]) => w >= w0 && w <= w1 && c <= c1);
  context.strokeStyle = "#d9480f";
  context.fillStyle = "#d9480f";
  context.beginPath();
  inside.forEach(([w, c], i) => (i ? context.lineTo(X(w), Y(c)) : context.moveTo(X(w), Y(c))));
  context.stroke();
  for (const [w, c] of inside) { context.beginPath(); context.arc(X(w), Y(c), 3, 0, 7); context.fill(); }
  const verdict = {
    converged: t("Converges in {n} steps.", { n: walk.steps.length - 1 }),
    diverged: t("Diverges: each step overshoots further."),
    crawling: t("Still crawling after {n} steps.", { n: walk.steps.length - 1 }),
  };
  $("descent-verdict").textContent = verdict[walk.verdict];
}

$("descent-rate").addEventListener("input", drawDescent);
$("curve").addEventListener("change", drawDescent);

// ---- start -------------------------------------------------------------------------------------

async function start() {
  clearCanvas();
  for (let digit = 0; digit < 10; digit++) $("label").add(new Option(String(digit), digit));
  try {
    state.info = await ask("/api/info");
  } catch (error) { fail(error); return; }
  const models = Object.keys(state.info.models);
  for (const name of models) $("model").add(new Option(name, name));
  state.model = models[0] || null;
  $("model").addEventListener("change", (event) => {
    state.model = event.target.value;
    clearCanvas();
    noteModel();
  });
  for (const [code, name] of Object.entries(state.info.languages)) $("lang").add(new Option(name, code));
  const code = localStorage.getItem("glassnet-lang") || state.info.language;
  $("lang").value = code;
  $("lang").addEventListener("change", (event) => setLanguage(event.target.value));
  await setLanguage(code);
  const unusable = Object.entries(state.info.unusable).map(([name, why]) => `${name}: ${why}`);
  if (!state.model) fail(new Error(t("No model here yet: train one below, or with `glassnet train`.")));
  else if (unusable.length) fail(new Error(unusable.join(" ")));
}

start();
