/**
 * A question asked in place (remove an app, forget a node): the button that
 * asks turns into "QUESTION? [Yes] [Cancel]", the Yes button taking focus,
 * Escape cancelling, and focus going back to the asking button on cancel.
 */
import { useLayoutEffect, useRef, useState } from 'preact/hooks';
import { html } from './html.js';

/** The state of one question: `ask()`, `cancel()`, and the refs of the asking and the Yes buttons. */
export function useConfirm() {
  const [confirming, setConfirming] = useState(false);
  const yesRef = useRef(/** @type {HTMLButtonElement | null} */ (null));
  const askRef = useRef(/** @type {HTMLButtonElement | null} */ (null));
  const asked = useRef(false);
  // Focus moves to Yes when asking, and back to the asking button when cancelled (once each,
  // not on every re-render: the tables re-render every second).
  // A layout effect: the focus moves in the same turn as the buttons appear, never a frame later.
  useLayoutEffect(() => {
    if (confirming) {
      asked.current = true;
      yesRef.current?.focus();
    } else if (asked.current) {
      asked.current = false;
      askRef.current?.focus();
    }
  }, [confirming]);
  return {
    confirming,
    yesRef,
    askRef,
    ask: () => setConfirming(true),
    cancel: () => setConfirming(false),
    /** The answer is done and the row that asked is going: focus is not handed back to it. */
    gone: () => (asked.current = false),
  };
}

/** The question and its two buttons; `onYes` runs the action (the caller cancels when it is done). */
export function ConfirmGroup({ confirm, question, yes, busy, onYes }) {
  return html`<div
    class="actions confirm"
    role="group"
    aria-label=${question}
    onKeyDown=${(e) => {
      if (e.key === 'Escape') confirm.cancel();
    }}
  >
    <span>${question}</span>
    <button key="yes" type="button" class="danger" ref=${confirm.yesRef} aria-disabled=${busy ? 'true' : undefined} onClick=${onYes}>${yes}</button>
    <button key="cancel" type="button" onClick=${confirm.cancel}>Cancel</button>
  </div>`;
}
