// Placeholder until the modeler lands (the modeler helper owns this folder and replaces this file).
// The shell calls mountModeler(container, ctx) for #/modeler and #/modeler/<definition_id>; see the
// "ctx" description in console/src/main.js. It may return a function the shell calls when the page goes.
export function mountModeler(container, ctx) {
  const note = document.createElement('p');
  note.dataset.testid = 'modeler';
  note.textContent = ctx.definitionId ? `Modeler: ${ctx.definitionId}` : 'Modeler';
  container.replaceChildren(note);
  return () => {};
}
