// The frame every page draws into: `render` replaces the page, `onLeave`
// registers a cleanup (a timer, a socket) that runs when the person moves on.
// Pages import it; the router calls `leave` before drawing the next page.

import { fill } from "./ui.js";

const main = document.getElementById("main");
let leaving = [];

export function render(...nodes) {
  fill(main, ...nodes);
  main.focus();
}

export function onLeave(fn) {
  leaving.push(fn);
}

export function leave() {
  for (const fn of leaving) fn();
  leaving = [];
}
