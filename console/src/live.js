// Live updates: one EventSource on /api/events (status events the server already filtered for this
// person); pages say what to refresh, debounced so a burst of events costs one reload.
import { debounce } from './dom.js';

const subscribers = new Set();
let source = null;
let stateListener = () => {};
let retryTimer = null;
let retryDelay = 2000;
const RETRY_MAX_MS = 60000;

/** Opens the event stream once; `onState(connected)` hears when it drops and comes back. */
export function startLive(onState = () => {}) {
  stateListener = onState;
  if (source || retryTimer || typeof EventSource === 'undefined') return;
  open();
}

function open() {
  retryTimer = null;
  source = new EventSource('/api/events');
  source.addEventListener('open', () => {
    retryDelay = 2000;
    stateListener(true);
  });
  source.addEventListener('error', () => {
    stateListener(false);
    // A dropped connection is retried by EventSource itself; an error answer (503 while the server
    // cannot reach NATS, 429 with too many tabs open) closes it for good, so it is opened again later.
    if (source && source.readyState === EventSource.CLOSED) {
      source = null;
      retryTimer = setTimeout(open, retryDelay);
      retryDelay = Math.min(retryDelay * 2, RETRY_MAX_MS);
    }
  });
  source.addEventListener('status', (message) => {
    let event;
    try {
      event = JSON.parse(message.data);
    } catch {
      return;
    }
    for (const subscriber of subscribers) subscriber(event);
  });
}

/** Closes the stream (on sign-out or when the session is gone). */
export function stopLive() {
  clearTimeout(retryTimer);
  retryTimer = null;
  source?.close();
  source = null;
}

/**
 * Calls `refresh()` (debounced by `wait` ms) after status events that `matches(event)` accepts (all by
 * default). Returns the function that stops it; the router calls it when the page goes.
 */
export function onLive(refresh, matches = () => true, wait = 600) {
  const later = debounce(refresh, wait);
  const subscriber = (event) => {
    if (matches(event)) later();
  };
  subscribers.add(subscriber);
  return () => {
    later.cancel();
    subscribers.delete(subscriber);
  };
}
