// Legacy comment widget: comments are Markdown rendered on the server.
export function showComment(container, commentHtml) {
  const item = document.createElement("li");
  item.innerHTML = commentHtml;
  container.appendChild(item);
}

export function clearComments(container) {
  // Comparison, not assignment: not a hit.
  if (container.innerHTML == "") {
    return;
  }
  container.textContent = "";
}
