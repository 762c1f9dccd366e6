// The farm view: what an operator looks at first. Per backend: generations running and waiting,
// images per minute over the last hour, VRAM in use, the model loaded; for the pool: the queue and
// the throughput over time. Fed by the push stream's `farm` events (live.js), nothing polled.

import {barChart, meter} from './chart.js';
import {h} from './dom.js';

const GIB = 2 ** 30;

function gib(bytes) {
  return `${(bytes / GIB).toFixed(1)} GiB`;
}

/** A backend's series arrives without its leading zeros: put them back. */
function padded(values, length) {
  return [...Array(Math.max(0, length - values.length)).fill(0), ...values];
}

function current(images) {
  return images.length ? images[images.length - 1] : 0;
}

function bucketName(bucketSeconds) {
  return bucketSeconds === 60 ? 'minute' : `${bucketSeconds} s`;
}

function stat(name, value, key) {
  return h('div', {class: 'farm-stat'}, h('span', {class: 'farm-stat-value', text: value, dataset: {farm: key}}),
    h('span', {class: 'farm-stat-name', text: name}));
}

export class FarmView {
  constructor(root) {
    this.root = root;
    this.last = null;
  }

  /** Draw a snapshot (the `farm` event's data). */
  update(snapshot) {
    this.last = snapshot;
    this.root.hidden = false;
    const pool = snapshot.pool;
    const minutes = Math.round((snapshot.bucket_seconds * pool.images.length) / 60);
    const poolChart = barChart(pool.images, {line: pool.queue_history, className: 'farm-pool-chart',
      label: `Images finished per ${snapshot.bucket_seconds} s over the last ${minutes} minutes `
        + `(${pool.images_total} in all), with the deepest queue as a line`});
    const summary = h('div', {class: 'farm-stats'},
      stat('in the queue', pool.queue, 'pool-queue'),
      stat('running', pool.running, 'pool-running'),
      stat(`images this ${bucketName(snapshot.bucket_seconds)}`, current(pool.images), 'pool-rate'),
      stat('images done', pool.images_total, 'pool-total'));
    const rows = snapshot.backends.map((backend) => this.backendRow(
      {...backend, images: padded(backend.images, snapshot.buckets)}, snapshot.bucket_seconds));
    this.root.querySelector('.farm-body').replaceChildren(summary, poolChart,
      h('div', {class: 'farm-backends'}, ...rows));
  }

  backendRow(backend, bucketSeconds) {
    const vram = backend.vram_total > 0
      ? `${gib(backend.vram_used)} of ${gib(backend.vram_total)}` : 'no devices reported';
    return h('article', {class: 'farm-backend', id: `farm-backend-${backend.id}`,
      dataset: {backendId: String(backend.id), status: backend.status}},
    h('header', {class: 'farm-backend-head'},
      h('span', {class: 'farm-backend-title', text: `#${backend.id} ${backend.title}`}),
      h('span', {class: 'badge', text: backend.status})),
    h('div', {class: 'farm-backend-facts'},
      h('span', {text: `${backend.running} running`, dataset: {farm: 'running'}}),
      h('span', {text: `${backend.waiting} waiting`, dataset: {farm: 'waiting'}}),
      h('span', {text: `${backend.images_total} images`, dataset: {farm: 'images'}}),
      h('span', {class: 'farm-model', text: backend.model ? `model ${backend.model}` : 'no model loaded',
        dataset: {farm: 'model'}})),
    h('div', {class: 'farm-vram'}, h('span', {text: `VRAM ${vram}`, dataset: {farm: 'vram'}}),
      meter(backend.vram_used, backend.vram_total, `VRAM in use: ${vram}`)),
    barChart(backend.images, {className: 'farm-backend-chart', height: 30,
      label: `Images per ${bucketSeconds} s on backend ${backend.id} over the last hour `
        + `(${current(backend.images)} this ${bucketName(bucketSeconds)})`}));
  }
}
