// Live updates: one EventSource on /api/events (status events the server already filtered for this
// person); pages say what to refresh, debounced so a burst of events costs one reload.
import { debounce } from './dom.js';

const subscribers = new Set();
let source = null;
let stateListener = () => {};

/** Opens the event stream once; `onState(connected)` hears when it drops and comes back. */
export function startLive(onState = () => {}) {
  stateListener = onState;
  if (source || typeof EventSource === 'undefined') return;
  source = new EventSource('/api/events');
  source.addEventListener('open', () => stateListener(true));
  source.addEventListener('error', () => stateListener(false)); // EventSource reconnects by itself
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
