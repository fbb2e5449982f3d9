/*
 * Process designer (page designer/edit.html): the draft's files in the bpmn-js Modeler with its
 * properties panel, Telerad's own properties (form of a user task, role of a lane, escalation delay
 * of a timer), save with server validation, findings listed and highlighted on the canvas.
 *
 * Globals used: `BpmnJS` (vendor/bpmn-js/bpmn-modeler.production.min.js) and
 * `BpmnJSPropertiesPanel` (vendor/bpmn-js-properties-panel/bpmn-js-properties-panel.umd.js).
 * Runs under `script-src 'self'; style-src 'self'`: no eval, no inline style, no innerHTML.
 * The server is the authority: everything typed here is validated again when saved and deployed.
 */
(function () {
  'use strict';

  var SPIFF_NS = 'http://spiffworkflow.org/bpmn/schema/1.0/core';
  var MESSAGES = {
    fr: {
      loading: 'Chargement du brouillon…',
      noModeler: "Le modeleur n'est pas chargé. Rechargez la page ; si le problème persiste, prévenez l'administrateur.",
      loadFailed: "Le brouillon n'a pas pu être chargé (erreur {status}). Rechargez la page.",
      importFailed: "Ce fichier n'a pas pu être dessiné : {message}. Corrigez-le dans l'éditeur XML ci-dessous.",
      unsaved: 'Modifications non enregistrées',
      saving: 'Enregistrement et validation…',
      saved: 'Révision {revision} enregistrée : {errors} erreur(s), {warnings} avertissement(s).',
      conflict: 'Non enregistré : {message}',
      saveFailed: "Non enregistré (erreur {status}) : {message}",
      network: 'Non enregistré : le serveur ne répond pas. Vos modifications sont encore dans la page ; réessayez.',
      noFindings: 'Aucun problème : le brouillon peut être déployé.',
      errors: 'Erreurs (bloquent le déploiement)',
      warnings: 'Avertissements',
      show: 'Afficher',
      element: 'élément',
      nothingSelected: 'Sélectionnez une étape, un couloir ou un délai.',
      form: 'Formulaire de la tâche',
      noForm: '— aucun —',
      openForm: 'Voir ou modifier ce formulaire',
      reloadForms: 'Actualiser la liste',
      role: 'Rôle des personnes de ce couloir',
      noRole: '— choisir —',
      timer: 'Délai',
      timerSetting: "Délai d'escalade (réglé par l'administrateur)",
      timerCustom: '— expression —',
      timerExpression: 'Expression du délai',
      charterRole: 'Rôle au titre de la charte (contrôlé au déploiement et à chaque étape)',
      noCharterRole: '— aucun —',
      leave: 'Des modifications ne sont pas enregistrées.'
    },
    en: {
      loading: 'Loading the draft…',
      noModeler: 'The modeler is not loaded. Reload the page; if it persists, tell the administrator.',
      loadFailed: 'The draft could not be loaded (error {status}). Reload the page.',
      importFailed: 'This file could not be drawn: {message}. Fix it in the XML editor below.',
      unsaved: 'Unsaved changes',
      saving: 'Saving and validating…',
      saved: 'Revision {revision} saved: {errors} error(s), {warnings} warning(s).',
      conflict: 'Not saved: {message}',
      saveFailed: 'Not saved (error {status}): {message}',
      network: 'Not saved: the server does not answer. Your changes are still in the page; try again.',
      noFindings: 'No problem: the draft can be deployed.',
      errors: 'Errors (deployment blocked)',
      warnings: 'Warnings',
      show: 'Show',
      element: 'element',
      nothingSelected: 'Select a step, a lane or a timer.',
      form: 'Task form',
      noForm: '— none —',
      openForm: 'View or edit this form',
      reloadForms: 'Refresh the list',
      role: 'Role of the people in this lane',
      noRole: '— choose —',
      timer: 'Delay',
      timerSetting: 'Escalation delay (set by the administrator)',
      timerCustom: '— expression —',
      timerExpression: 'Delay expression',
      charterRole: 'Role under the charter (checked at deployment and at every step)',
      noCharterRole: '— none —',
      leave: 'Some changes are not saved.'
    }
  };

  var root = document.getElementById('designer');
  if (!root) return;
  var lang = (document.documentElement.lang || 'fr').toLowerCase().indexOf('en') === 0 ? 'en' : 'fr';
  function t(key, values) {
    var text = MESSAGES[lang][key];
    Object.keys(values || {}).forEach(function (name) { text = text.replace('{' + name + '}', String(values[name])); });
    return text;
  }
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (name === 'text') node.textContent = attrs[name];
      else if (name === 'className') node.className = attrs[name];
      else node.setAttribute(name, attrs[name]);
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }

  var config = {
    draftUrl: root.getAttribute('data-draft-url'),
    saveUrl: root.getAttribute('data-save-url'),
    formsUrl: root.getAttribute('data-forms-url'),
    formUrl: root.getAttribute('data-form-url'),
    csrf: root.getAttribute('data-csrf'),
    processId: root.getAttribute('data-process'),
    roles: JSON.parse(root.getAttribute('data-roles') || '[]'),
    settings: JSON.parse(root.getAttribute('data-settings') || '[]'),
    forms: JSON.parse(root.getAttribute('data-forms') || '[]'),
    charterRoles: JSON.parse(root.getAttribute('data-charter-roles') || '[]')
  };
  var status = document.getElementById('designer-status');
  var fileSelect = document.getElementById('designer-file');
  var canvasBox = document.getElementById('designer-canvas');
  var xmlBox = document.getElementById('designer-xml');
  var teleradBody = document.getElementById('designer-telerad-body');
  var findingsBox = document.getElementById('designer-findings');
  var deployButton = document.getElementById('designer-deploy');
  var revisionInput = document.getElementById('designer-revision');
  var saveButton = document.getElementById('designer-save');

  var state = { files: {}, current: null, revision: 0, dirty: false, errors: 0, reports: [], marked: [] };
  var modeler = null;

  function setStatus(text, kind) {
    status.textContent = text;
    status.className = 'small ' + (kind === 'error' ? 'text-danger' : kind === 'ok' ? 'text-success' : 'text-muted');
  }
  function markDirty() {
    if (!state.dirty) {
      state.dirty = true;
      setStatus(t('unsaved'));
    }
    deployButton.disabled = true;
  }

  // ------------------------------------------------------------------ spiffworkflow:properties

  // Unknown namespaces stay generic moddle elements: `$children` of `spiffworkflow:property` with
  // `name` and `value`, written back as they are when the diagram is exported.
  function propertiesElement(bo, create) {
    var ext = bo.extensionElements;
    var moddle = modeler.get('moddle');
    if (!ext) {
      if (!create) return null;
      ext = moddle.create('bpmn:ExtensionElements', { values: [] });
      ext.$parent = bo;
      bo.extensionElements = ext;
    }
    var values = ext.get('values');
    for (var i = 0; i < values.length; i++) {
      if (values[i].$type === 'spiffworkflow:properties') return values[i];
    }
    if (!create) return null;
    var props = moddle.createAny('spiffworkflow:properties', SPIFF_NS, { $children: [] });
    props.$parent = ext;
    values.push(props);
    return props;
  }
  function getProperty(bo, name) {
    var props = propertiesElement(bo, false);
    var children = (props && props.$children) || [];
    for (var i = 0; i < children.length; i++) {
      if (children[i].$type === 'spiffworkflow:property' && children[i].name === name) return children[i].value || '';
    }
    return '';
  }
  function setProperty(bo, name, value) {
    var props = propertiesElement(bo, true);
    props.$children = props.$children || [];
    var existing = props.$children.filter(function (c) { return c.$type === 'spiffworkflow:property' && c.name === name; });
    if (!value && existing.length) {  // "none" removes the property rather than leaving an empty one
      props.$children = props.$children.filter(function (c) { return existing.indexOf(c) < 0; });
    } else if (existing.length) {
      existing[0].value = value;
    } else {
      var prop = modeler.get('moddle').createAny('spiffworkflow:property', SPIFF_NS, { name: name, value: value });
      prop.$parent = props;
      props.$children.push(prop);
    }
    markDirty();
  }

  // ------------------------------------------------------------------------- Telerad panel

  function field(labelText, control) {
    var id = 'telerad-' + Math.random().toString(36).slice(2);
    control.id = id;
    return el('div', { className: 'mb-2' }, [el('label', { className: 'form-label mb-0', for: id, text: labelText }), control]);
  }
  function select(options, value, onChange) {
    var s = el('select', { className: 'form-select form-select-sm' });
    options.forEach(function (o) {
      var option = el('option', { value: o[0], text: o[1] });
      if (o[0] === value) option.selected = true;
      s.appendChild(option);
    });
    s.addEventListener('change', function () { onChange(s.value); });
    return s;
  }

  function userTaskPanel(element) {
    var bo = element.businessObject;
    var current = getProperty(bo, 'formJsonSchemaFilename');
    var keys = config.forms.slice();
    if (current && keys.indexOf(current) < 0) keys.push(current);
    var link = el('a', { target: '_blank', rel: 'noopener', text: t('openForm') });
    function updateLink(key) {
      link.hidden = !key;
      link.href = config.formUrl.replace('__KEY__', encodeURIComponent(key || ''));
    }
    var control = select([['', t('noForm')]].concat(keys.map(function (k) { return [k, k]; })), current, function (v) {
      setProperty(bo, 'formJsonSchemaFilename', v);
      updateLink(v);
    });
    control.setAttribute('data-telerad', 'form');
    updateLink(current);
    var reload = el('button', { type: 'button', className: 'btn btn-link btn-sm p-0 ms-2', text: t('reloadForms') });
    reload.addEventListener('click', function () {
      fetch(config.formsUrl, { credentials: 'same-origin' }).then(function (r) { return r.json(); }).then(function (data) {
        config.forms = data.forms || [];
        renderPanel(element);
      });
    });
    return [field(t('form'), control), el('div', {}, [link, reload])];
  }

  function lanePanel(element) {
    var bo = element.businessObject;
    var current = getProperty(bo, 'role');
    var control = select([['', t('noRole')]].concat(config.roles), current, function (v) { setProperty(bo, 'role', v); });
    control.setAttribute('data-telerad', 'role');
    return [field(t('role'), control)];
  }

  var SETTING_EXPRESSION = /^escalation\[\s*["']([A-Za-z0-9_]+)["']\s*\]$/;
  function timerPanel(element, definition) {
    var expression = definition.timeDuration || definition.timeDate || definition.timeCycle;
    var text = expression ? (expression.body || '') : '';
    var match = SETTING_EXPRESSION.exec(text.trim());
    var input = el('input', { className: 'form-control form-control-sm font-monospace', type: 'text', spellcheck: 'false' });
    input.value = text;
    input.setAttribute('data-telerad', 'timer-expression');
    function write(body) {
      var modeling = modeler.get('modeling');
      var moddle = modeler.get('moddle');
      if (expression) {
        modeling.updateModdleProperties(element, expression, { body: body });
      } else {
        expression = moddle.create('bpmn:FormalExpression', { body: body });
        modeling.updateModdleProperties(element, definition, { timeDuration: expression });
      }
    }
    var control = select([['', t('timerCustom')]].concat(config.settings.map(function (s) { return [s, s]; })),
      match ? match[1] : '', function (v) {
        if (!v) return;
        input.value = 'escalation["' + v + '"]';
        write(input.value);
      });
    control.setAttribute('data-telerad', 'timer-setting');
    input.addEventListener('change', function () { write(input.value); });
    return [field(t('timerSetting'), control), field(t('timerExpression'), input)];
  }

  var CHARTER_TYPES = ['bpmn:UserTask', 'bpmn:ServiceTask', 'bpmn:BusinessRuleTask', 'bpmn:CallActivity',
    'bpmn:SubProcess', 'bpmn:EndEvent', 'bpmn:ReceiveTask', 'bpmn:ManualTask', 'bpmn:Task'];
  function charterRolePanel(element) {
    var bo = element.businessObject;
    var control = select([['', t('noCharterRole')]].concat(config.charterRoles), getProperty(bo, 'charterRole') || '',
      function (v) { setProperty(bo, 'charterRole', v); });
    control.setAttribute('data-telerad', 'charterRole');
    return [field(t('charterRole'), control)];
  }

  function renderPanel(element) {
    while (teleradBody.firstChild) teleradBody.removeChild(teleradBody.firstChild);
    var bo = element && element.businessObject;
    var parts = null;
    if (bo && bo.$type === 'bpmn:UserTask') parts = userTaskPanel(element);
    else if (bo && bo.$type === 'bpmn:Lane') parts = lanePanel(element);
    else if (bo && (bo.eventDefinitions || []).some(function (d) { return d.$type === 'bpmn:TimerEventDefinition'; })) {
      parts = timerPanel(element, bo.eventDefinitions.filter(function (d) { return d.$type === 'bpmn:TimerEventDefinition'; })[0]);
    }
    if (bo && CHARTER_TYPES.indexOf(bo.$type) >= 0) parts = (parts || []).concat(charterRolePanel(element));
    if (!parts) {
      teleradBody.appendChild(el('p', { className: 'text-muted mb-0', text: t('nothingSelected') }));
      return;
    }
    teleradBody.appendChild(el('p', { className: 'mb-1' }, [el('code', { text: bo.id })]));
    parts.forEach(function (p) { teleradBody.appendChild(p); });
  }

  // ----------------------------------------------------------------------------- files

  function isBpmn(name) { return /\.bpmn$/i.test(name); }

  function storeCurrent() {
    if (!state.current) return Promise.resolve();
    if (!isBpmn(state.current) || xmlBox.hidden === false) {
      state.files[state.current] = xmlBox.value;
      return Promise.resolve();
    }
    return modeler.saveXML({ format: true }).then(function (result) { state.files[state.current] = result.xml; });
  }

  function showFile(name) {
    state.current = name;
    fileSelect.value = name;
    state.marked = [];
    if (!isBpmn(name)) {
      canvasBox.hidden = true;
      xmlBox.hidden = false;
      xmlBox.value = state.files[name];
      return Promise.resolve();
    }
    canvasBox.hidden = false;
    xmlBox.hidden = true;
    return modeler.importXML(state.files[name]).then(function () {
      readableView();
      markFindings();
    }).catch(function (error) {
      canvasBox.hidden = true;
      xmlBox.hidden = false;
      xmlBox.value = state.files[name];
      setStatus(t('importFailed', { message: (error && error.message) || '?' }), 'error');
    });
  }

  // Fit the diagram; a long procedure would then be unreadably small, so show its beginning at a readable zoom.
  function readableView() {
    var canvas = modeler.get('canvas');
    if (!canvasBox.clientWidth) return;
    canvas.zoom('fit-viewport', 'auto');
    if (canvas.zoom() >= 0.6) return;
    var inner = canvas.viewbox().inner;
    var scale = 0.8;
    canvas.viewbox({ x: inner.x - 20, y: inner.y - 20, width: canvasBox.clientWidth / scale,
      height: canvasBox.clientHeight / scale });
  }

  function fillFileSelect() {
    while (fileSelect.firstChild) fileSelect.removeChild(fileSelect.firstChild);
    Object.keys(state.files).sort().forEach(function (name) {
      fileSelect.appendChild(el('option', { value: name, text: name }));
    });
  }

  // --------------------------------------------------------------------------- findings

  function markFindings() {
    if (!modeler || canvasBox.hidden) return;
    var canvas = modeler.get('canvas');
    var registry = modeler.get('elementRegistry');
    state.marked.forEach(function (m) { if (registry.get(m[0])) canvas.removeMarker(m[0], m[1]); });
    state.marked = [];
    state.reports.forEach(function (report) {
      if (report.file !== state.current) return;
      [['errors', 'finding-error'], ['warnings', 'finding-warning']].forEach(function (kind) {
        report[kind[0]].forEach(function (f) {
          if (f.element_id && registry.get(f.element_id)) {
            canvas.addMarker(f.element_id, kind[1]);
            state.marked.push([f.element_id, kind[1]]);
          }
        });
      });
    });
  }

  function reveal(file, elementId) {
    var go = file !== state.current && state.files[file] !== undefined
      ? storeCurrent().then(function () { return showFile(file); }) : Promise.resolve();
    go.then(function () {
      if (!elementId || canvasBox.hidden) return;
      var element = modeler.get('elementRegistry').get(elementId);
      if (!element) return;
      modeler.get('selection').select(element);
      modeler.get('canvas').scrollToElement(element);
    });
  }

  // The element whose id, or else whose name, is `text` (case-insensitive), on the file shown.
  function findElement(text) {
    var wanted = text.trim().toLowerCase();
    if (!wanted || canvasBox.hidden) return null;
    var registry = modeler.get('elementRegistry');
    var exact = registry.get(text.trim());
    if (exact) return exact;
    return registry.filter(function (e) {
      var name = e.businessObject && e.businessObject.name;
      return !e.labelTarget && ((e.id.toLowerCase() === wanted) || (name && name.toLowerCase().indexOf(wanted) >= 0));
    })[0] || null;
  }

  function renderFindings() {
    while (findingsBox.firstChild) findingsBox.removeChild(findingsBox.firstChild);
    var any = false;
    [['errors', 'errors', 'list-group-item-danger'], ['warnings', 'warnings', 'list-group-item-warning']].forEach(function (kind) {
      var items = [];
      state.reports.forEach(function (report) {
        report[kind[0]].forEach(function (f) { items.push([report.file, f]); });
      });
      if (!items.length) return;
      any = true;
      findingsBox.appendChild(el('h3', { className: 'h6 mt-2', text: t(kind[1]) }));
      var list = el('ul', { className: 'list-group', 'data-kind': kind[0] });
      items.forEach(function (item) {
        var f = item[1];
        var li = el('li', { className: 'list-group-item ' + kind[2] + ' finding', 'data-element': f.element_id || '', 'data-rule': f.rule });
        li.appendChild(el('code', { className: 'me-2', text: item[0] + (f.element_id ? ' · ' + f.element_id : '') }));
        li.appendChild(el('span', { className: 'badge text-bg-light me-2', text: f.rule }));
        li.appendChild(document.createTextNode(f.message));
        if (f.element_id) {
          var b = el('button', { type: 'button', className: 'btn btn-link btn-sm', text: t('show') });
          b.addEventListener('click', function () { reveal(item[0], f.element_id); });
          li.appendChild(b);
        }
        list.appendChild(li);
      });
      findingsBox.appendChild(list);
    });
    if (!any) findingsBox.appendChild(el('p', { className: 'text-success', text: t('noFindings') }));
  }

  function applyDraft(draft) {
    state.revision = draft.revision;
    state.errors = draft.error_count;
    state.reports = draft.reports || [];
    revisionInput.value = String(draft.revision);
    deployButton.disabled = draft.revision === 0 || draft.error_count > 0 || state.dirty;
    if (draft.revision > 0) renderFindings();
    markFindings();
  }

  // ------------------------------------------------------------------------------- save

  function save() {
    saveButton.disabled = true;
    setStatus(t('saving'));
    var sent;
    return storeCurrent().then(function () {
      sent = JSON.stringify({ files: state.files, revision: state.revision });
      return fetch(config.saveUrl, {
        method: 'POST', credentials: 'same-origin', body: sent,
        headers: { 'Content-Type': 'application/json', 'X-CSRFToken': config.csrf, Accept: 'application/json' }
      });
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        if (response.status === 409) { setStatus(t('conflict', { message: body.error || '' }), 'error'); return; }
        if (!response.ok) { setStatus(t('saveFailed', { status: response.status, message: body.error || '' }), 'error'); return; }
        state.dirty = false;
        applyDraft(body);
        setStatus(t('saved', { revision: body.revision, errors: body.error_count, warnings: body.warning_count }),
          body.error_count ? 'error' : 'ok');
      });
    }, function () {
      setStatus(t('network'), 'error');
    }).then(function () { saveButton.disabled = false; });
  }

  // bpmn-js's translate service: the template translated when the dictionary has it, then {name} replaced.
  function translator(dictionary) {
    return function (template, replacements) {
      var text = Object.prototype.hasOwnProperty.call(dictionary, template) ? dictionary[template] : template;
      return text.replace(/{([^}]+)}/g, function (_all, key) {
        return replacements && replacements[key] !== undefined ? replacements[key] : '{' + key + '}';
      });
    };
  }

  // ------------------------------------------------------------------------------- start

  function start() {
    if (typeof window.BpmnJS !== 'function') { setStatus(t('noModeler'), 'error'); return; }
    var panel = window.BpmnJSPropertiesPanel;
    var modules = panel ? [panel.BpmnPropertiesPanelModule, panel.BpmnPropertiesProviderModule] : [];
    var dictionary = lang === 'fr' && window.TeleradBpmnTranslations && window.TeleradBpmnTranslations.fr;
    if (dictionary) modules.push({ translate: ['value', translator(dictionary)] });
    modeler = new window.BpmnJS({
      container: canvasBox,
      propertiesPanel: panel ? { parent: '#designer-properties' } : undefined,
      additionalModules: modules
    });
    modeler.on('commandStack.changed', function (event) { if (!event || event.trigger !== 'clear') markDirty(); });
    modeler.on('selection.changed', function (event) { renderPanel(event.newSelection[0] || null); });
    modeler.on('element.changed', function (event) {
      var selected = modeler.get('selection').get();
      if (selected.length === 1 && selected[0] === event.element && !teleradBody.contains(document.activeElement)) {
        renderPanel(event.element);
      }
    });
    xmlBox.addEventListener('input', markDirty);
    fileSelect.addEventListener('change', function () {
      var target = fileSelect.value;
      fileSelect.value = state.current;
      storeCurrent().then(function () { return showFile(target); });
    });
    saveButton.addEventListener('click', save);
    document.getElementById('designer-goto-form').addEventListener('submit', function (event) {
      event.preventDefault();
      var input = document.getElementById('designer-goto');
      var element = findElement(input.value);
      input.classList.toggle('is-invalid', !element);
      if (!element) return;
      modeler.get('canvas').scrollToElement(element);
      modeler.get('selection').select(element);
    });
    document.getElementById('designer-deploy-form').addEventListener('submit', function (event) {
      if (state.dirty || state.errors) event.preventDefault();
    });
    window.addEventListener('beforeunload', function (event) {
      if (state.dirty) { event.preventDefault(); event.returnValue = t('leave'); }
    });
    setStatus(t('loading'));
    fetch(config.draftUrl, { credentials: 'same-origin', headers: { Accept: 'application/json' }, cache: 'no-cache' })
      .then(function (response) {
        if (!response.ok) throw new Error(t('loadFailed', { status: response.status }));
        return response.json();
      }).then(function (draft) {
        state.files = draft.files;
        fillFileSelect();
        var names = Object.keys(state.files).sort();
        var main = names.indexOf(config.processId + '.bpmn') >= 0 ? config.processId + '.bpmn'
          : names.filter(isBpmn)[0] || names[0];
        return showFile(main).then(function () {
          applyDraft(draft);
          state.dirty = false;
          deployButton.disabled = draft.revision === 0 || draft.error_count > 0;
          if (draft.revision) {
            setStatus(t('saved', { revision: draft.revision, errors: draft.error_count, warnings: draft.warning_count }),
              draft.error_count ? 'error' : undefined);
          } else {
            status.textContent = status.getAttribute('data-initial') || '';
          }
          root.setAttribute('data-ready', 'true');
        });
      }).catch(function (error) { setStatus(error.message, 'error'); });
  }

  start();
}());
