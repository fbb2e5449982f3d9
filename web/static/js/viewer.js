// The case's image viewer (web/templates/clinical/viewer.html, web/clinical/viewer.py): Cornerstone3D stack
// viewports reading Telerad's DICOMweb with the session cookie. Left pane: the case's studies; right pane: the
// patient's other studies the person may see (priors, found by a QIDO search on the Patient ID). Series list,
// stack scroll (wheel, slider, arrow keys), window/level with presets, zoom, pan, length measurement.
// Bundled with the libraries by scripts/build_viewer.mjs into /viewer/assets/viewer.js (ES module).
// Not a diagnostic console (CH-5.2): the page says so.
import { Enums, RenderingEngine, init as initCore } from '@cornerstonejs/core';
import {
  Enums as ToolEnums,
  LengthTool,
  PanTool,
  StackScrollTool,
  ToolGroupManager,
  WindowLevelTool,
  ZoomTool,
  addTool,
  init as initTools,
} from '@cornerstonejs/tools';
import dicomImageLoader from '@cornerstonejs/dicom-image-loader';

const TAG = {
  studyUid: '0020000D',
  seriesUid: '0020000E',
  sopUid: '00080018',
  instanceNumber: '00200013',
  frames: '00280008',
  modality: '00080060',
  seriesNumber: '00200011',
  seriesDescription: '0008103E',
  patientId: '00100020',
  studyDate: '00080020',
  studyDescription: '00081030',
  seriesInstances: '00201209',
};
// Window width and centre (Hounsfield units) of the usual CT presets.
const PRESETS = {
  brain: { width: 80, center: 40 },
  lung: { width: 1500, center: -600 },
  bone: { width: 2000, center: 300 },
  abdomen: { width: 400, center: 40 },
};
const PRIMARY_TOOLS = {
  WindowLevel: WindowLevelTool.toolName,
  Pan: PanTool.toolName,
  Zoom: ZoomTool.toolName,
  Length: LengthTool.toolName,
};
const MAX_IMAGES = 2000; // per series shown: a viewing aid, not a console
const ENGINE_ID = 'telerad-viewer';
const TOOL_GROUP_ID = 'telerad-viewer-tools';

const root = document.getElementById('viewer');
// Messages in French, or in English when the page (or the viewer's element) says lang="en".
const TEXTS = {
  fr: {
    loading: 'Chargement des images…',
    noImage: 'Cette série ne contient aucune image affichable.',
    truncated: (max) => `Seules les ${max} premières images sont affichées.`,
    failed: 'Les images n’ont pas pu être chargées : rechargez la page ; si cela persiste, prévenez l’administrateur.',
    noSeries: 'Aucune série visible pour ce dossier.',
    noPrior: 'Aucun examen antérieur visible pour ce patient.',
    unknownDate: 'date inconnue',
    number: 'n°',
    images: (count) => `${count} ${count > 1 ? 'images' : 'image'}`,
  },
  en: {
    loading: 'Loading the images…',
    noImage: 'This series holds no image that can be shown.',
    truncated: (max) => `Only the first ${max} images are shown.`,
    failed: 'The images could not be loaded: reload the page; if it happens again, tell the administrator.',
    noSeries: 'No series of this case can be shown to you.',
    noPrior: 'No earlier study of this patient can be shown to you.',
    unknownDate: 'unknown date',
    number: 'no.',
    images: (count) => `${count} ${count > 1 ? 'images' : 'image'}`,
  },
};
const holder = root?.closest('[lang]');
const T = ((holder && holder.getAttribute('lang')) || document.documentElement.lang || 'fr').toLowerCase()
  .startsWith('en') ? TEXTS.en : TEXTS.fr;

function value(item, tag) {
  const entry = item?.[tag];
  const first = entry?.Value?.[0];
  if (first && typeof first === 'object' && 'Alphabetic' in first) return first.Alphabetic;
  return first;
}

async function qido(base, path, params = {}) {
  const url = new URL(`${base}${path}`, window.location.origin);
  for (const [key, val] of Object.entries(params)) url.searchParams.set(key, val);
  const response = await fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/dicom+json' } });
  if (response.status === 204) return [];
  if (!response.ok) throw new Error(`QIDO ${url.pathname}: HTTP ${response.status}`);
  return response.json();
}

function formatDate(text) {
  return text && /^\d{8}$/.test(text) ? `${text.slice(6, 8)}/${text.slice(4, 6)}/${text.slice(0, 4)}` : '';
}

function seriesLabel(series) {
  const number = value(series, TAG.seriesNumber);
  const parts = [value(series, TAG.modality) || '—'];
  if (number !== undefined) parts.push(`${T.number} ${number}`);
  const description = value(series, TAG.seriesDescription);
  if (description) parts.push(description);
  const count = value(series, TAG.seriesInstances);
  if (count !== undefined) parts.push(`(${T.images(count)})`);
  return parts.join(' ');
}

function studyLabel(study) {
  const date = formatDate(value(study, TAG.studyDate));
  const description = value(study, TAG.studyDescription);
  return [date || T.unknownDate, description].filter(Boolean).join(' · ');
}

class Pane {
  constructor(section, engine, base) {
    this.section = section;
    this.base = base;
    this.engine = engine;
    this.viewportId = `telerad-${section.dataset.pane}`;
    this.element = section.querySelector('[data-viewport]');
    this.select = section.querySelector('[data-series-select]');
    this.slider = section.querySelector('[data-slice]');
    this.sliceLabel = section.querySelector('[data-slice-label]');
    this.status = section.querySelector('[data-pane-status]');
    this.element.addEventListener('contextmenu', (event) => event.preventDefault());
    engine.enableElement({ viewportId: this.viewportId, type: Enums.ViewportType.STACK, element: this.element });
    this.viewport = engine.getViewport(this.viewportId);
    this.element.tabIndex = 0; // enableElement sets -1: keep the image reachable with Tab (arrow keys scroll)
    this.slider.addEventListener('input', () => this.show(Number(this.slider.value) - 1));
    this.element.addEventListener('keydown', (event) => this.onKey(event));
    this.element.addEventListener(Enums.Events.STACK_NEW_IMAGE, (event) => this.onImage(event.detail.imageIdIndex));
    this.element.addEventListener(Enums.Events.IMAGE_RENDERED, () => {
      this.element.dataset.rendered = 'true';
    });
    this.select.addEventListener('change', () => this.openSeries(this.select.value));
  }

  say(text) {
    this.status.textContent = text;
  }

  // options: [{ value: "study|series", label, group }]
  fill(options) {
    this.select.replaceChildren();
    const groups = new Map();
    for (const option of options) {
      let parent = this.select;
      if (option.group) {
        if (!groups.has(option.group)) {
          const group = document.createElement('optgroup');
          group.label = option.group;
          this.select.append(group);
          groups.set(option.group, group);
        }
        parent = groups.get(option.group);
      }
      parent.append(new Option(option.label, option.value));
    }
    this.select.disabled = options.length === 0;
    if (options.length === 0) this.section.dataset.empty = 'true';
  }

  async openSeries(key) {
    const [studyUid, seriesUid] = key.split('|');
    if (!studyUid || !seriesUid) return;
    this.say(T.loading);
    delete this.element.dataset.rendered;
    const instances = await qido(this.base, `/studies/${studyUid}/series/${seriesUid}/instances`);
    instances.sort((a, b) => (value(a, TAG.instanceNumber) ?? 0) - (value(b, TAG.instanceNumber) ?? 0));
    const imageIds = [];
    for (const instance of instances.slice(0, MAX_IMAGES)) {
      const url = new URL(`${this.base}/wado`, window.location.origin);
      url.search = new URLSearchParams({
        requestType: 'WADO', studyUID: studyUid, seriesUID: seriesUid, objectUID: value(instance, TAG.sopUid),
        contentType: 'application/dicom',
      }).toString();
      const frames = Number(value(instance, TAG.frames) || 1);
      if (frames > 1) {
        for (let frame = 1; frame <= frames && imageIds.length < MAX_IMAGES; frame += 1) {
          imageIds.push(`wadouri:${url.href}&frame=${frame}`);
        }
      } else {
        imageIds.push(`wadouri:${url.href}`);
      }
    }
    if (imageIds.length === 0) {
      this.say(T.noImage);
      return;
    }
    this.slider.max = String(imageIds.length);
    this.slider.disabled = imageIds.length < 2;
    this.element.dataset.images = String(imageIds.length);
    await this.viewport.setStack(imageIds, 0);
    this.viewport.render();
    this.onImage(0);
    this.say(imageIds.length >= MAX_IMAGES ? T.truncated(MAX_IMAGES) : '');
  }

  show(index) {
    const count = Number(this.element.dataset.images || 0);
    if (!count) return;
    const bounded = Math.max(0, Math.min(count - 1, index));
    this.viewport.setImageIdIndex(bounded).catch((error) => this.fail(error));
  }

  onImage(index) {
    const count = Number(this.element.dataset.images || 0);
    this.element.dataset.imageIndex = String(index);
    this.slider.value = String(index + 1);
    this.sliceLabel.textContent = `${index + 1} / ${count}`;
  }

  onKey(event) {
    const steps = { ArrowUp: -1, ArrowLeft: -1, PageUp: -10, ArrowDown: 1, ArrowRight: 1, PageDown: 10 };
    if (event.key === 'Home' || event.key === 'End') {
      event.preventDefault();
      this.show(event.key === 'Home' ? 0 : Number(this.element.dataset.images || 1) - 1);
    } else if (event.key in steps) {
      event.preventDefault();
      this.show(this.viewport.getCurrentImageIdIndex() + steps[event.key]);
    }
  }

  applyPreset(name) {
    const preset = PRESETS[name];
    if (!preset || !this.element.dataset.images) return;
    const half = preset.width / 2;
    this.viewport.setProperties({ voiRange: { lower: preset.center - half, upper: preset.center + half } });
    this.viewport.render();
    this.element.dataset.preset = name;
  }

  reset() {
    if (!this.element.dataset.images) return;
    this.viewport.resetProperties();
    this.viewport.resetCamera();
    this.viewport.render();
    delete this.element.dataset.preset;
  }

  fail(error) {
    console.warn('viewer:', error);
    this.say(T.failed);
  }
}

function setupTools(panes) {
  for (const tool of [WindowLevelTool, PanTool, ZoomTool, StackScrollTool, LengthTool]) addTool(tool);
  const group = ToolGroupManager.createToolGroup(TOOL_GROUP_ID);
  for (const tool of [WindowLevelTool, PanTool, ZoomTool, StackScrollTool, LengthTool]) group.addTool(tool.toolName);
  for (const pane of panes) group.addViewport(pane.viewportId, ENGINE_ID);
  const { MouseBindings } = ToolEnums;
  group.setToolActive(StackScrollTool.toolName, { bindings: [{ mouseButton: MouseBindings.Wheel }] });
  group.setToolActive(ZoomTool.toolName, { bindings: [{ mouseButton: MouseBindings.Secondary }] });
  group.setToolActive(PanTool.toolName, { bindings: [{ mouseButton: MouseBindings.Auxiliary }] });
  group.setToolActive(WindowLevelTool.toolName, { bindings: [{ mouseButton: MouseBindings.Primary }] });
  let primary = WindowLevelTool.toolName;
  for (const button of root.querySelectorAll('[data-tool]')) {
    button.addEventListener('click', () => {
      const chosen = PRIMARY_TOOLS[button.dataset.tool];
      if (!chosen || chosen === primary) return;
      // The previous primary tool keeps its other buttons (zoom: right, pan: middle); measurements stay drawn.
      const keep = { [ZoomTool.toolName]: MouseBindings.Secondary, [PanTool.toolName]: MouseBindings.Auxiliary };
      if (keep[primary]) group.setToolActive(primary, { bindings: [{ mouseButton: keep[primary] }] });
      else group.setToolPassive(primary);
      group.setToolActive(chosen, { bindings: [{ mouseButton: MouseBindings.Primary }] });
      primary = chosen;
      for (const other of root.querySelectorAll('[data-tool]')) {
        const on = other === button;
        other.classList.toggle('active', on);
        other.setAttribute('aria-pressed', String(on));
      }
    });
  }
}

function byDateDescending(a, b) {
  return String(value(b, TAG.studyDate) || '').localeCompare(String(value(a, TAG.studyDate) || ''));
}

async function seriesOptions(base, studies, grouped) {
  const options = [];
  for (const study of studies) {
    const studyUid = value(study, TAG.studyUid);
    const series = await qido(base, `/studies/${studyUid}/series`);
    for (const item of series) {
      options.push({ value: `${studyUid}|${value(item, TAG.seriesUid)}`, label: seriesLabel(item),
        group: grouped ? studyLabel(study) : '' });
    }
  }
  return options;
}

// The case's studies, the newest first: it is the one opened; returns the case's studies in that order.
async function loadCurrent(pane, base, studyUids) {
  const studies = [];
  for (const studyUid of studyUids) {
    const [study] = await qido(base, '/studies', { StudyInstanceUID: studyUid });
    if (study) studies.push(study);
  }
  studies.sort(byDateDescending);
  const options = await seriesOptions(base, studies, studies.length > 1);
  pane.fill(options);
  if (options.length === 0) {
    pane.say(T.noSeries);
    return studies;
  }
  await pane.openSeries(options[0].value);
  return studies;
}

// Every other study of the patient that the person may see (the case's older studies, the studies of the
// patient's other cases, the priors fetched for the case), the newest first, by a QIDO search on the Patient ID.
async function loadPriors(pane, base, studies) {
  const shown = studies.length ? value(studies[0], TAG.studyUid) : undefined;
  const patientIds = [...new Set(studies.map((study) => value(study, TAG.patientId)).filter(Boolean))];
  const priors = new Map();
  for (const patientId of patientIds) {
    for (const study of await qido(base, '/studies', { PatientID: patientId })) {
      const uid = value(study, TAG.studyUid);
      if (uid && uid !== shown) priors.set(uid, study);
    }
  }
  const options = await seriesOptions(base, [...priors.values()].sort(byDateDescending), true);
  pane.fill(options);
  if (options.length === 0) {
    pane.say(T.noPrior);
    return;
  }
  await pane.openSeries(options[0].value);
}

async function main() {
  const base = root.dataset.dicomweb;
  const studyUids = (root.dataset.studies || '').split(',').filter(Boolean);
  initCore();
  initTools();
  dicomImageLoader.init({ maxWebWorkers: 1, wasmBasePath: root.dataset.assets });
  const engine = new RenderingEngine(ENGINE_ID);
  const [current, prior] = [...root.querySelectorAll('[data-pane]')].map((section) => new Pane(section, engine, base));
  setupTools([current, prior]);
  for (const button of root.querySelectorAll('[data-preset]')) {
    button.addEventListener('click', () => [current, prior].forEach((pane) => pane.applyPreset(button.dataset.preset)));
  }
  root.querySelector('[data-reset]')?.addEventListener('click', () => [current, prior].forEach((pane) => pane.reset()));
  window.addEventListener('resize', () => engine.resize(true, true));
  let studies = [];
  try {
    studies = await loadCurrent(current, base, studyUids);
  } catch (error) {
    current.fail(error);
  }
  try {
    await loadPriors(prior, base, studies);
  } catch (error) {
    prior.fail(error);
  }
  root.dataset.state = 'ready';
}

if (root) {
  main().catch((error) => {
    console.warn('viewer:', error);
    root.dataset.state = 'failed';
  });
}
