/*
 * Live inbox (see README.md here): listens to the server-sent events of `[data-live-url]` and, when the server
 * says "your list changed", fetches this same page (same address, so the same filters and sort) and swaps the
 * content of `#live-region`. The stream carries no case data: what is shown comes from the page, with the
 * server's permission checks.
 *
 * New vital-emergency offers (rows `[data-urgency="0"][data-offer="open"]` not seen before) can raise a desktop
 * notification and a short tone (Web Audio API, no sound file); both are off until the user turns them on
 * (stored in localStorage; the notification permission is asked on that click).
 * No globals, no inline code: fits `script-src 'self'`.
 */
(function () {
  'use strict';

  var STORE = 'telerad.live.';
  var BUSY_RETRY_MS = 30000;
  var DEBOUNCE_MS = 200;
  var JITTER_MS = 300; // spreads the pages of one change over a few hundred ms on the server

  var controls = document.querySelector('[data-live-url]');
  var region = document.getElementById('live-region');
  if (!controls || !region || !window.EventSource || !window.fetch) return;

  var texts = {};
  try { texts = JSON.parse(region.getAttribute('data-live-texts') || '{}'); } catch (e) { texts = {}; }
  var status = document.getElementById('live-status');
  var source = null;
  var pending = null;
  var fetching = false;
  var again = false;
  var audio = null;
  var known = offers(document);

  function setStatus(text) {
    if (status && status.textContent !== text) status.textContent = text;
  }

  function option(name) {
    try { return window.localStorage.getItem(STORE + name) === 'on'; } catch (e) { return false; }
  }

  function remember(name, on) {
    try { window.localStorage.setItem(STORE + name, on ? 'on' : 'off'); } catch (e) { /* private mode */ }
  }

  // Ids of the open vital-emergency offers of a document.
  function offers(root) {
    var found = {};
    Array.prototype.forEach.call(root.querySelectorAll('tr[data-task-id][data-urgency="0"][data-offer="open"]'),
      function (row) { found[row.getAttribute('data-task-id')] = true; });
    return found;
  }

  function beep() {
    if (!audio) return;
    var start = audio.currentTime;
    [0, 0.25].forEach(function (delay) {
      var tone = audio.createOscillator();
      var gain = audio.createGain();
      tone.type = 'sine';
      tone.frequency.value = 880;
      gain.gain.setValueAtTime(0.0001, start + delay);
      gain.gain.exponentialRampToValueAtTime(0.3, start + delay + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + delay + 0.18);
      tone.connect(gain);
      gain.connect(audio.destination);
      tone.start(start + delay);
      tone.stop(start + delay + 0.2);
    });
  }

  function alertUrgent(count) {
    if (option('sound')) beep();
    if (option('notify') && window.Notification && Notification.permission === 'granted') {
      var note = new Notification(texts.urgentTitle || 'Urgence vitale',
        { body: texts.urgentBody || '', tag: 'telerad-urgent', renotify: true });
      note.onclick = function () { window.focus(); note.close(); };
    }
    document.title = '(' + count + ') ' + document.title.replace(/^\(\d+\) /, '');
  }

  function swap(html) {
    var fresh = new DOMParser().parseFromString(html, 'text/html').getElementById('live-region');
    if (!fresh) return false;
    var active = document.activeElement;
    if (active && region.contains(active) && active.matches('input, select, textarea')) return false;
    var now = offers(fresh);
    var arrived = Object.keys(now).filter(function (id) { return !known[id]; }).length;
    region.replaceChildren.apply(region, Array.prototype.slice.call(fresh.childNodes).map(function (node) {
      return document.importNode(node, true);
    }));
    known = now;
    document.dispatchEvent(new CustomEvent('telerad:updated'));
    var time = new Date().toLocaleTimeString(document.documentElement.lang || 'fr', { hour: '2-digit', minute: '2-digit', second: '2-digit' });
    setStatus((texts.live || '') + ' — ' + (texts.updated || '') + ' ' + time);
    if (arrived) alertUrgent(arrived);
    return true;
  }

  function refresh() {
    if (fetching) { again = true; return; }
    fetching = true;
    window.fetch(window.location.href, { credentials: 'same-origin', headers: { 'X-Telerad-Background': '1' } })
      .then(function (response) {
        // Signed out meanwhile (idle timeout, session closed): show the login page.
        if (response.redirected && /\/login/.test(response.url)) { window.location.reload(); return null; }
        return response.ok ? response.text() : null;
      })
      .then(function (html) { if (html) swap(html); })
      .catch(function () { setStatus(texts.reconnecting || ''); })
      .then(function () {
        fetching = false;
        if (again) { again = false; refresh(); }
      });
  }

  function soon() {
    window.clearTimeout(pending);
    pending = window.setTimeout(refresh, DEBOUNCE_MS + Math.random() * JITTER_MS);
  }

  function connect() {
    if (source) source.close();
    var opened = false;
    source = new EventSource(controls.getAttribute('data-live-url'));
    source.addEventListener('ready', function () {
      if (opened) soon(); // reconnected: catch up on what happened meanwhile
      opened = true;
      controls.setAttribute('data-live-state', 'live');
      setStatus(texts.live || '');
    });
    source.addEventListener('inbox', soon);
    source.addEventListener('busy', function () { // the server serves as many pages as it may: it retries later
      controls.setAttribute('data-live-state', 'busy');
      setStatus(texts.busy || '');
    });
    source.addEventListener('bye', function (event) {
      var reason = '';
      try { reason = JSON.parse(event.data).reason; } catch (e) { reason = ''; }
      if (reason === 'superseded') { // another page of this person took the place: wait to be seen again
        source.close();
        controls.setAttribute('data-live-state', 'paused');
      }
    });
    source.onerror = function () {
      if (controls.getAttribute('data-live-state') === 'busy') return; // the retry hint of the server applies
      controls.setAttribute('data-live-state', 'reconnecting');
      if (source.readyState === EventSource.CLOSED) { // refused (signed out, proxy error): try later
        setStatus(texts.reconnecting || '');
        window.setTimeout(function () { connect(); soon(); }, BUSY_RETRY_MS + Math.random() * 5000);
      } else {
        setStatus(texts.reconnecting || '');
      }
    };
  }

  function setUpOptions() {
    Array.prototype.forEach.call(controls.querySelectorAll('[data-live-option]'), function (box) {
      var name = box.getAttribute('data-live-option');
      box.checked = option(name);
      box.addEventListener('change', function () {
        remember(name, box.checked);
        if (name === 'sound' && box.checked) {
          var Context = window.AudioContext || window.webkitAudioContext;
          if (Context && !audio) audio = new Context(); // created on a click: allowed to play
          if (audio) audio.resume();
        }
        if (name === 'notify' && box.checked && window.Notification && Notification.permission !== 'granted') {
          Notification.requestPermission().then(function (answer) {
            if (answer !== 'granted') { box.checked = false; remember(name, false); setStatus(texts.denied || ''); }
          });
        }
      });
    });
    // The tone needs an audio context created after a user gesture: the first click on the page does.
    document.addEventListener('click', function () {
      var Context = window.AudioContext || window.webkitAudioContext;
      if (option('sound') && Context && !audio) audio = new Context();
    }, { once: true });
  }

  setUpOptions();
  connect();
  document.addEventListener('visibilitychange', function () {
    if (!document.hidden) {
      document.title = document.title.replace(/^\(\d+\) /, '');
      if (controls.getAttribute('data-live-state') === 'paused') { connect(); soon(); }
    }
  });
  window.addEventListener('focus', function () { document.title = document.title.replace(/^\(\d+\) /, ''); });
  window.addEventListener('pagehide', function () { if (source) source.close(); });
}());
