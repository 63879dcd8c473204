/**
 * Preact with htm's tagged templates: JSX-like markup with no build step.
 * `preact` and `htm` resolve through the page's import map to the copies the
 * gateway serves from node_modules (never a CDN).
 */
import { h } from 'preact';
import htm from 'htm';

export const html = htm.bind(h);
