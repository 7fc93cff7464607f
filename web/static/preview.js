// RawFlow preview: plays one channel's playlist (or ?src=, e.g. a proxy's) with hls.js when the
// build bundled it, else with the browser's native HLS. window.__preview and #status
// data-state are the contract the browser tests read (web/e2e).
'use strict';
(() => {
  const P = window.__preview = { fatalErrors: [], nonFatal: 0, lastNonFatal: '', playError: '', fragments: 0, engine: 'none', trace: [] };
  const video = document.getElementById('video');
  const status = document.getElementById('status');
  const channel = decodeURIComponent(location.pathname.split('/')[2] || '');
  const src = new URLSearchParams(location.search).get('src') || `/live/${encodeURIComponent(channel)}/index.m3u8`;
  const MAX_RELOADS = 5;
  let hls = null, reloads = 0, lastTime = null;

  // note keeps the last 40 playback events (what the engine loaded and when, seeks, stalls),
  // for the browser tests' failure messages and for anyone reading window.__preview.
  const t0 = performance.now();
  const note = (what) => {
    P.trace.push(`${((performance.now() - t0) / 1000).toFixed(1)}s ${what}`);
    if (P.trace.length > 40) P.trace.shift();
  };
  const show = (id, text) => { document.getElementById(id).textContent = text; };
  function setState(state, text) {
    status.setAttribute('data-state', state);
    status.lastChild.textContent = text;
  }
  function fatal(type, details) {
    P.fatalErrors.push({ at: Date.now(), type, details });
    setState('error', `Playback error (${type}: ${details})`);
  }
  // play asks the element to play. Refused autoplay leaves the controls to the viewer; a request
  // interrupted by a new load (AbortError: the engine replaced the source) is asked again once
  // the element can play. P.playError keeps the last refusal for the browser tests.
  const play = () => video.play().then(() => { P.playError = ''; }, (err) => {
    P.playError = `${err.name}: ${err.message}`;
    if (err.name === 'AbortError') video.addEventListener('canplay', play, { once: true });
  });

  // "playing" once the playhead moves by itself: a seek (the jump to the live edge) is no proof.
  video.addEventListener('timeupdate', () => {
    const t = video.currentTime;
    if (lastTime !== null && !video.seeking && t > lastTime && t - lastTime < 1.5 && status.dataset.state !== 'unsupported') {
      setState('playing', P.fatalErrors.length ? `Playing (recovered from ${P.fatalErrors.length} errors)` : 'Playing');
    }
    lastTime = t;
  });
  video.addEventListener('waiting', () => {
    note(`waiting at ${video.currentTime.toFixed(2)}`);
    if (status.dataset.state === 'playing') status.lastChild.textContent = 'Buffering…';
  });
  video.addEventListener('seeking', () => note(`seeking to ${video.currentTime.toFixed(2)}`));

  function startHlsJs() {
    const Hls = window.Hls;
    hls = new Hls({ cmcd: { contentId: channel }, backBufferLength: 30 });
    hls.on(Hls.Events.MANIFEST_PARSED, play);
    hls.on(Hls.Events.LEVEL_LOADED, (_, d) => {
      const x = d.details;
      note(`playlist ${x.startSN}-${x.endSN} ${x.live ? 'live' : 'vod'} ${x.fragments.length ? x.fragments[0].start.toFixed(2) : '?'}-${x.edge.toFixed(2)}`);
    });
    hls.on(Hls.Events.FRAG_LOADING, (_, d) => note(`loading ${d.frag.sn} at ${d.frag.start.toFixed(2)}`));
    hls.on(Hls.Events.FRAG_LOADED, (_, d) => {
      const l = d.frag.stats.loading;
      note(`loaded ${d.frag.sn}: ${d.frag.stats.loaded} bytes in ${Math.round(l.end - l.start)} ms`);
    });
    hls.on(Hls.Events.FRAG_BUFFERED, (_, d) => { P.fragments++; note(`buffered ${d.frag.sn}`); });
    hls.on(Hls.Events.ERROR, (_, d) => {
      note(`error ${d.details}${d.fatal ? ' (fatal)' : ''}${d.frag ? ` frag ${d.frag.sn}` : ''}`);
      if (!d.fatal) { P.nonFatal++; P.lastNonFatal = `${d.type}: ${d.details}`; return; }
      fatal(d.type, d.details);
      if (d.type === Hls.ErrorTypes.MEDIA_ERROR && reloads < MAX_RELOADS) {
        reloads++;
        hls.recoverMediaError();
      } else if (reloads < MAX_RELOADS) { // network and other errors: start over, after a pause
        reloads++;
        hls.destroy();
        setTimeout(startHlsJs, 3000);
      } else {
        hls.destroy();
      }
    });
    hls.loadSource(src);
    hls.attachMedia(video);
  }

  function startNative(reason) {
    if (!video.canPlayType('application/vnd.apple.mpegurl')) {
      P.engine = 'none';
      show('engine', 'none');
      setState('unsupported', `${reason}, and this browser cannot play HLS natively`);
      return;
    }
    P.engine = 'native';
    show('engine', `native (${reason})`);
    video.addEventListener('error', () => fatal('media', (video.error && video.error.message) || 'the browser could not play the stream'));
    video.src = src;
    play();
  }

  function facts() {
    const b = video.buffered, t = video.currentTime;
    let ahead = 0;
    for (let i = 0; i < b.length; i++) if (b.start(i) <= t + 0.1 && b.end(i) > t) ahead = b.end(i) - t;
    show('buffer', ahead.toFixed(1) + ' s');
    const q = video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality() : null;
    show('dropped', q ? `${q.droppedVideoFrames} of ${q.totalVideoFrames}` : '–');
    show('errors', `${P.nonFatal} / ${P.fatalErrors.length}`);
    if (!hls) return;
    const level = hls.levels && hls.levels[hls.currentLevel];
    if (level) {
      const parts = [level.height && `${level.height}p`, level.bitrate && `${(level.bitrate / 1e6).toFixed(2)} Mbit/s`].filter(Boolean);
      show('rendition', `${parts.join(', ') || 'the only one'} (${hls.currentLevel + 1} of ${hls.levels.length})`);
    }
    if (Number.isFinite(hls.latency)) show('latency', hls.latency.toFixed(1) + ' s');
    if (Number.isFinite(hls.bandwidthEstimate)) show('bandwidth', (hls.bandwidthEstimate / 1e6).toFixed(2) + ' Mbit/s');
  }

  document.title = `${channel} · RawFlow preview`;
  show('channel-name', channel);
  show('source', src);
  setInterval(facts, 1000);

  const script = document.createElement('script');
  script.src = '/ui/vendor/hls.min.js';
  script.onload = () => {
    if (!window.Hls || !window.Hls.isSupported()) {
      startNative('no Media Source Extensions for hls.js');
      return;
    }
    P.engine = 'hls.js';
    show('engine', `hls.js ${window.Hls.version}`);
    startHlsJs();
  };
  script.onerror = () => startNative('hls.js is not bundled in this build');
  document.head.append(script);
})();
