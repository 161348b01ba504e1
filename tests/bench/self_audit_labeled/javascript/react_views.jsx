import React from "react";
import ReactMarkdown from "react-markdown";
import Markdown from "react-markdown";
import rehypeRaw from "rehype-raw";
import rehypeSanitize from "rehype-sanitize";
import DOMPurify from "dompurify";
import { marked } from "marked";

export function Post({ html, md, post, name }) {
  return (
    <article>
      {/* tw:pos react */}
      <div dangerouslySetInnerHTML={{ __html: html }} />
      {/* tw:pos react */}
      <ReactMarkdown allowDangerousHtml>{md}</ReactMarkdown>
      {/* tw:pos react */}
      <ReactMarkdown source={md} escapeHtml={false} />
      {/* tw:pos react */}
      <ReactMarkdown rehypePlugins={[rehypeRaw]}>{md}</ReactMarkdown>
      {/* tw:pos react */}
      <span dangerouslySetInnerHTML={{ __html: `<b>${name}</b>` }} />
      {/* tw:pos react */}
      <Markdown remarkRehypeOptions={{ allowDangerousHtml: true }}>{md}</Markdown>
      {/* tw:pos react */}
      <section dangerouslySetInnerHTML={renderPost(post)} />
      {/* tw:neg react */}
      <div dangerouslySetInnerHTML={{ __html: "<br/>" }} />
      {/* tw:neg react */}
      <div dangerouslySetInnerHTML={{ __html: DOMPurify.sanitize(html) }} />
      {/* tw:neg react */}
      <div>{html}</div>
      {/* tw:neg react */}
      <ReactMarkdown>{md}</ReactMarkdown>
      {/* tw:neg react */}
      <ReactMarkdown source={md} escapeHtml={true} />
      {/* tw:neg react */}
      <ReactMarkdown skipHtml>{md}</ReactMarkdown>
      {/* dangerouslySetInnerHTML={{ __html: html }} */}
      {/* tw:neg react */}
      <ReactMarkdown rehypePlugins={[rehypeSanitize]}>{md}</ReactMarkdown>
      {/* tw:neg react */}
      <p title={html}>{name}</p>
    </article>
  );
}

function renderPost(post) {
  return { __html: post.body };
}

export function create(html, md) {
  // tw:pos react
  const a = React.createElement("div", { dangerouslySetInnerHTML: { __html: html } });
  // tw:pos react
  const props = { dangerouslySetInnerHTML: { __html: marked(md) } };
  // tw:neg react
  const note = "dangerouslySetInnerHTML is dangerous";
  // tw:neg react
  const b = React.createElement("div", { title: html });
  return [a, props, note, b];
}
