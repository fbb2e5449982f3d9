/*
 * Due-time countdowns and page auto-refresh (see README.md here).
 *
 * - Every `[data-due]` element (ISO 8601 UTC timestamp) shows "dans 1 h 05 min" or
 *   "en retard de 12 min" ("in 1 h 05 min" / "overdue by 12 min" when the element's language, or
 *   the page's, is English), refreshed every 30 s, with the class `overdue` once past. The text goes
 *   into a descendant `[data-countdown-text]` when there is one, else replaces the element's text;
 *   its `title` (the absolute time) is never touched.
 * - `<main data-refresh-seconds="60">` reloads the page after that delay, unless a form field has
 *   the focus (the reload then waits until it loses it) or has been changed (no reload at all).
 * No globals, no inline style, no eval: fits `script-src 'self'; style-src 'self'`.
 */
(function () {
  'use strict';

  var TICK_MS = 30 * 1000;
  var MIN_REFRESH_SECONDS = 10;
  var FIELDS = 'input, select, textarea, [contenteditable]:not([contenteditable="false"])';

  var WORDS = {
    fr: { future: 'dans {d}', past: 'en retard de {d}', lessThanMinute: "moins d'1 min", day: 'j' },
    en: { future: 'in {d}', past: 'overdue by {d}', lessThanMinute: 'less than 1 min', day: 'd' }
  };

  function language(element) {
    var holder = element.closest('[lang]');
    var lang = (holder && holder.getAttribute('lang')) || document.documentElement.lang || 'fr';
    return lang.toLowerCase().indexOf('en') === 0 ? 'en' : 'fr';
  }

  // ISO 8601 in UTC; Python's isoformat() gives microseconds and "+00:00", both accepted here.
  // A timestamp without an offset is read as UTC, as the attribute is defined.
  function parseDue(value) {
    var text = (value || '').trim().replace(/(\.\d{3})\d+/, '$1');
    if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(text)) text += 'Z';
    var time = Date.parse(text);
    return isNaN(time) ? null : time;
  }

  function pad(n) {
    return n < 10 ? '0' + n : String(n);
  }

  // Whole minutes, rounded down: "12 min", "1 h 05 min", "2 j 03 h" (days only past 48 h).
  function duration(ms, words) {
    var minutes = Math.floor(ms / 60000);
    if (minutes < 1) return words.lessThanMinute;
    if (minutes < 60) return minutes + ' min';
    var hours = Math.floor(minutes / 60);
    if (hours < 48) return hours + ' h ' + pad(minutes % 60) + ' min';
    return Math.floor(hours / 24) + ' ' + words.day + ' ' + pad(hours % 24) + ' h';
  }

  function describe(due, now, words) {
    var delta = due - now;
    return delta > 0
      ? words.future.replace('{d}', duration(delta, words))
      : words.past.replace('{d}', duration(-delta, words));
  }

  function update(element, now) {
    var due = parseDue(element.getAttribute('data-due'));
    if (due === null) return; // leave the server-rendered text alone
    var target = element.querySelector('[data-countdown-text]') || element;
    var text = describe(due, now, WORDS[language(element)]);
    if (target.textContent !== text) target.textContent = text;
    element.classList.add('countdown');
    element.classList.toggle('overdue', due <= now);
  }

  function updateAll() {
    var now = Date.now();
    Array.prototype.forEach.call(document.querySelectorAll('[data-due]'), function (element) {
      update(element, now);
    });
  }

  function startCountdowns() {
    if (!document.querySelector('[data-due]')) return;
    updateAll();
    window.setInterval(updateAll, TICK_MS);
    // Background tabs throttle timers: catch up as soon as the page is seen again.
    document.addEventListener('visibilitychange', function () {
      if (!document.hidden) updateAll();
    });
  }

  // ---- auto-refresh -------------------------------------------------------------------------

  var edited = false;

  function isField(element) {
    return !!element && element.nodeType === 1 && element.matches(FIELDS) &&
      !(element.tagName === 'INPUT' && /^(hidden|submit|button|reset|image)$/i.test(element.type));
  }

  // Every field's state, to notice changes that fire no event (some autofill, scripts).
  function snapshot() {
    var fields = document.querySelectorAll('input, select, textarea');
    return Array.prototype.map.call(fields, function (field) {
      if (!isField(field)) return '';
      if (field.tagName === 'SELECT') {
        return Array.prototype.map.call(field.options, function (o) { return o.selected ? '1' : '0'; }).join('');
      }
      if (field.type === 'checkbox' || field.type === 'radio') return String(field.checked);
      if (field.type === 'file') return String(field.files ? field.files.length : 0);
      return field.value;
    }).join('\u0000') + '|' + fields.length;
  }

  function startRefresh() {
    var main = document.querySelector('main[data-refresh-seconds]');
    if (!main) return;
    var seconds = parseInt(main.getAttribute('data-refresh-seconds'), 10);
    if (!(seconds > 0)) return;
    seconds = Math.max(seconds, MIN_REFRESH_SECONDS);

    var onEdit = function (event) {
      if (isField(event.target) || (event.target && event.target.isContentEditable)) edited = true;
    };
    document.addEventListener('input', onEdit, true);
    document.addEventListener('change', onEdit, true);

    var initial = snapshot();
    var due = false;
    var tryReload = function () {
      if (edited || snapshot() !== initial) return; // typed text is never thrown away
      if (isField(document.activeElement)) return; // wait for the focus to leave the field
      window.location.reload();
    };
    document.addEventListener('focusout', function () {
      // The focus moves in two steps (out, then in): look once it has landed.
      if (due) window.setTimeout(tryReload, 0);
    });
    window.setTimeout(function () {
      due = true;
      tryReload();
    }, seconds * 1000);
  }

  function start() {
    startCountdowns();
    startRefresh();
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
}());
