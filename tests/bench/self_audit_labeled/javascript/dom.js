// DOM sinks: markup strings parsed as HTML.
import DOMPurify from "dompurify";
import sanitizeHtml from "sanitize-html";

export function render(el, html, item, markup, body, title, range, content, page, frame, a, b, text) {
  // tw:pos dom
  el.innerHTML = html;
  // tw:pos dom
  el.innerHTML += "<li>" + item + "</li>";
  // tw:pos dom
  el.outerHTML = markup;
  // tw:pos dom
  el["innerHTML"] = body;
  // tw:pos dom
  el['outerHTML'] = body;
  // tw:pos dom
  Object.assign(el, { innerHTML: body });
  // tw:pos dom
  document.write(html);
  // tw:pos dom
  document
    .write(content);
  // tw:pos dom
  document.writeln("<p>" + text + "</p>");
  // tw:pos dom
  window.document.write(body);
  // tw:pos dom
  el.insertAdjacentHTML("beforeend", item);
  // tw:pos dom
  const frag = range.createContextualFragment(html);
  // tw:pos dom
  document.createRange().createContextualFragment(markup);
  // tw:pos dom
  el.setHTMLUnsafe(content);
  // tw:pos dom
  const doc = Document.parseHTMLUnsafe(html);
  // tw:pos dom
  frame.srcdoc = page;
  // tw:pos dom
  this.container.innerHTML = `<div>${title}</div>`;
  // tw:pos dom
  el.innerHTML = DOMPurify.sanitize(a) + b;
  // tw:pos dom
  const box = Object.assign(document.createElement("div"), { innerHTML: html });
  // tw:pos dom
  el.insertAdjacentHTML("afterbegin", `<b>${title}</b>`);
  return [frag, doc, box];
}

export function safe(el, html, text, markup, body) {
  // tw:neg dom
  el.innerHTML = "";
  // tw:neg dom
  el.innerHTML = '<span class="spinner"></span>';
  // tw:neg dom
  el.innerHTML = DOMPurify.sanitize(html);
  // tw:neg dom
  el.textContent = html;
  // tw:neg dom
  if (el.innerHTML === html) {
    return;
  }
  // tw:neg dom
  const copy = el.innerHTML;
  // el.innerHTML = html;  (a comment: never a finding)
  // tw:neg dom
  const msg = "do not write el.innerHTML = x or document.write(x)";
  // tw:neg dom
  document.title = text;
  // tw:neg dom
  el.insertAdjacentText("beforeend", text);
  // tw:neg dom
  el.insertAdjacentHTML("beforeend", "<hr>");
  // tw:neg dom
  document.write("<p>Loading</p>");
  // tw:neg dom
  el.innerHTML = `<b>static</b>`;
  // tw:neg dom
  Object.assign(el, { textContent: body });
  // tw:neg dom
  el.setHTML(markup);
  // tw:neg dom
  el.outerHTML = DOMPurify.sanitize(markup);
  /* document.write(body) */
  // tw:neg dom
  el.innerHTML = sanitizeHtml(body);
  // tw:neg dom
  const snippet = `el.innerHTML = ${text}`;
  // tw:neg dom
  el.dataset.innerHTML = text.length;
  // tw:neg dom
  const same = el.outerHTML == markup;
  return [copy, msg, snippet, same];
}
