import MarkdownIt from "markdown-it";

// tw:pos markdown
const unsafe = new MarkdownIt({ html: true });
// tw:neg markdown
const safe = new MarkdownIt({ html: false });
// tw:neg markdown
const defaults = new MarkdownIt();

export { unsafe, safe, defaults };
