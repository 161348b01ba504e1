import React from "react";

type Props = { html: string };

// tw:pos react
export const Preview: React.FC<Props> = ({ html }) => <div dangerouslySetInnerHTML={{ __html: html }} />;

export function mount(el: HTMLElement | null, html: string): void {
  // tw:pos dom
  el!.innerHTML = html as string;
  // tw:neg dom
  (el as HTMLElement).textContent = html;
}
