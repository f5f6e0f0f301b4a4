// The browser-side halves of checks.py. Each block below "// @name" is one function that
// checks.py hands to Playwright's page.evaluate; checks.py reads this file by those names.

// @math_ready
// Wait for MathJax (if the page loads it) to finish typesetting, with a time limit.
async (timeout) => {
  const mj = window.MathJax;
  if (!mj || !mj.startup || !mj.startup.promise) return 'no MathJax';
  const late = new Promise((resolve) => setTimeout(() => resolve('timeout'), timeout));
  return await Promise.race([mj.startup.promise.then(() => 'ok'), late]);
}

// @math_problems
// Every formula typeset and free of MathJax errors (an undefined macro, shown in red, is one
// too); no raw TeX left in the text a reader sees (code may show it).
(ready) => {
  const problems = [];
  const short = (s) => s.replace(/\s+/g, ' ').trim().slice(0, 80);
  for (const el of document.querySelectorAll('.math')) {
    if (!el.querySelector('mjx-container')) {
      problems.push('formula not typeset: ' + short(el.textContent));
    }
  }
  for (const el of document.querySelectorAll('mjx-merror, [data-mjx-error]')) {
    problems.push('MathJax error: ' + short(el.getAttribute('data-mjx-error') || el.textContent));
  }
  const mj = window.MathJax;
  if (ready === 'ok' && mj.startup.document) {
    for (const item of mj.startup.document.math) {
      if (!item.root) continue;
      const mml = mj.startup.toMML(item.root);
      if (/<merror|<mtext[^>]*mathcolor="red"[^>]*>\\/.test(mml)) {
        problems.push('TeX error in: ' + short(item.math));
      }
    }
  }
  const skip = 'pre, code, script, style, textarea, mjx-container, .highlight, .math';
  const raw = /\\\(|\\\)|\\\[|\\\]|\$\$|\\begin\{|\$[^$\s][^$]*\\[a-zA-Z]+[^$]*\$/;
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const parent = node.parentElement;
    if (!parent || parent.closest(skip)) continue;
    if (raw.test(node.textContent)) problems.push('raw TeX in the text: ' + short(node.textContent));
  }
  return problems;
}

// @images
() => [...document.images].map((img) => ({
  src: img.currentSrc || img.src || '',
  alt: img.getAttribute('alt'),
  decorative: img.getAttribute('role') === 'presentation'
    || img.getAttribute('aria-hidden') === 'true',
  complete: img.complete,
  natural: [img.naturalWidth, img.naturalHeight],
  shown: img.checkVisibility({visibilityProperty: true, opacityProperty: true}),
  size: [img.getBoundingClientRect().width, img.getBoundingClientRect().height],
}))

// @solutions
// Each solution: how many of its parts (all but the title) a reader sees now.
() => [...document.querySelectorAll('.solution')].map((sol, i) => {
  const seen = {visibilityProperty: true, opacityProperty: true};
  sol.dataset.hnrIndex = i;
  const body = [...sol.children].filter((c) => !c.classList.contains('admonition-title'));
  return {
    id: sol.id || String(i),
    title: (sol.querySelector('.admonition-title') || sol).textContent.trim().slice(0, 60),
    shown: body.filter((c) => c.checkVisibility(seen) && c.textContent.trim()).length,
    parts: body.length,
  };
})

// @solution_shown
(i) => {
  const seen = {visibilityProperty: true, opacityProperty: true};
  const sol = document.querySelector(`.solution[data-hnr-index="${i}"]`);
  const body = [...sol.children].filter((c) => !c.classList.contains('admonition-title'));
  return body.filter((c) => c.checkVisibility(seen) && c.textContent.trim()).length;
}

// @overflow
// What sticks out of the screen: the page scrolling sideways, and the elements of the text
// column that reach past its right edge without a scrolling box of their own around them.
() => {
  const width = document.documentElement.clientWidth;
  const problems = [];
  const scrolls = document.scrollingElement.scrollWidth;
  if (scrolls > width + 1) {
    problems.push(`the page scrolls sideways: ${scrolls}px of content in ${width}px`);
  }
  const article = document.querySelector('.bd-article') || document.querySelector('article')
    || document.querySelector('main') || document.body;
  const inScrollBox = (el) => {
    for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      if (['auto', 'scroll', 'hidden', 'clip'].includes(getComputedStyle(p).overflowX)) return true;
    }
    return false;
  };
  for (const el of article.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (!r.width || r.right <= width + 1 || inScrollBox(el)) continue;
    if (!el.checkVisibility({visibilityProperty: true})) continue;
    const cls = typeof el.className === 'string' && el.className ? '.' + el.className.split(' ')[0] : '';
    const text = el.textContent.replace(/\s+/g, ' ').trim().slice(0, 50);
    problems.push(`${el.tagName.toLowerCase()}${cls} reaches ${Math.round(r.right)}px `
                  + `(the screen is ${width}px): ${text}`);
    if (problems.length > 5) break;
  }
  return problems;
}

// @links
() => [...document.querySelectorAll('a[href]')].map((a) => a.href)

// @prose
// The visible prose of the page: no code, outputs, formulas or navigation.
() => {
  const article = document.querySelector('.bd-article') || document.querySelector('article')
    || document.querySelector('main') || document.body;
  const copy = article.cloneNode(true);
  copy.querySelectorAll('pre, code, script, style, mjx-container, .math, .cell_output, .headerlink')
    .forEach((el) => el.remove());
  return copy.textContent;
}

// @search_done
() => (document.querySelector('#search-results .search-summary') || {}).innerText

// @search_hits
() => [...document.querySelectorAll('#search-results ul.search li a')].map((a) => a.href)

// @cell_images
// For each code cell of the page, how many images its output shows (loaded ones).
() => [...document.querySelectorAll('div.cell')].map((cell) =>
  [...cell.querySelectorAll('.cell_output img')]
    .filter((img) => img.complete && img.naturalWidth > 0).length)
