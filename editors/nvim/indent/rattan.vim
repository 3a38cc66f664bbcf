" Indentation of Rattan topologies (.rtn), as `rattan fmt` lays them out: four spaces inside each
" `{ }`, `[ ]` and `( )`, a line that starts with `->` one level in from the chain it continues,
" and parameters of a multi-line parameter list under the first one.
if exists('b:did_indent')
  finish
endif
let b:did_indent = 1

setlocal indentexpr=GetRattanIndent(v:lnum)
setlocal indentkeys=0{,0},0),0],!^F,o,O,e,0=->
setlocal autoindent nosmartindent nocindent
let b:undo_indent = 'setlocal indentexpr< indentkeys< autoindent< smartindent< cindent<'

if exists('*GetRattanIndent')
  finish
endif

" The code of a line: without its comment and the text of its strings.
function! s:Code(lnum) abort
  let line = substitute(getline(a:lnum), '"\([^"\\]\|\\.\)*"', '""', 'g')
  return substitute(line, '\s*#.*$', '', '')
endfunction

function! s:Count(text, chars) abort
  return len(substitute(a:text, '[^' . a:chars . ']', '', 'g'))
endfunction

" Column (0-based) of the first bracket of `code` that closes one opened on an earlier line, or -1.
function! s:UnmatchedCloser(code) abort
  let depth = 0
  for i in range(len(a:code))
    let ch = a:code[i]
    if ch =~# '[{[(]'
      let depth += 1
    elseif ch =~# '[}\])]'
      if depth == 0
        return i
      endif
      let depth -= 1
    endif
  endfor
  return -1
endfunction

" The line of the bracket that the closer at column `col` of line `lnum` closes (0 if none).
function! s:OpenerLine(lnum, col) abort
  let depth = 0
  let lnum = a:lnum
  let code = strpart(s:Code(lnum), 0, a:col)
  while lnum > 0 && a:lnum - lnum < 1000
    for i in range(len(code) - 1, 0, -1)
      if code[i] =~# '[}\])]'
        let depth += 1
      elseif code[i] =~# '[{[(]'
        if depth == 0
          return lnum
        endif
        let depth -= 1
      endif
    endfor
    let lnum -= 1
    let code = lnum > 0 ? s:Code(lnum) : ''
  endwhile
  return 0
endfunction

" The line where the construct that line `lnum` ends began: back over the brackets it closes,
" and, with `arrows`, over the `->` lines of a chain to its first line.
function! s:Start(lnum, arrows) abort
  let lnum = a:lnum
  for _ in range(1000)
    let col = s:UnmatchedCloser(s:Code(lnum))
    if col >= 0
      let opener = s:OpenerLine(lnum, col)
      if opener == 0
        return lnum
      endif
      let lnum = opener
    elseif a:arrows && getline(lnum) =~# '^\s*->' && prevnonblank(lnum - 1) > 0
      let lnum = prevnonblank(lnum - 1)
    else
      return lnum
    endif
  endfor
  return lnum
endfunction

" The last bracket of `code` left open at its end: [column, char], or [-1, ''].
function! s:LastOpen(code) abort
  let stack = []
  for i in range(len(a:code))
    let ch = a:code[i]
    if ch =~# '[{[(]'
      call add(stack, i)
    elseif ch =~# '[}\])]' && !empty(stack)
      call remove(stack, -1)
    endif
  endfor
  return empty(stack) ? [-1, ''] : [stack[-1], a:code[stack[-1]]]
endfunction

function! GetRattanIndent(lnum) abort
  let prev = prevnonblank(a:lnum - 1)
  if prev == 0
    return 0
  endif
  let cur = getline(a:lnum)
  let code = s:Code(prev)
  let sw = shiftwidth()
  " A closing bracket: as the line that opened it.
  if cur =~# '^\s*[}\])]'
    let opener = s:OpenerLine(a:lnum, len(matchstr(cur, '^\s*')))
    return opener > 0 ? indent(s:Start(opener, 0)) : 0
  endif
  " Inside a bracket left open on the line above: one level in, or, in a parameter list that
  " goes on after its `(`, under the first parameter.
  let [col, ch] = s:LastOpen(code)
  if col >= 0
    if ch ==# '(' && strpart(code, col + 1) !~# '^\s*$'
      return col + 1 + len(matchstr(strpart(code, col + 1), '^\s*'))
    endif
    return indent(s:Start(prev, 0)) + sw
  endif
  " A chain going on: under the `->` of the line above, or one level in from its first line.
  if cur =~# '^\s*->'
    let last = s:Start(prev, 0)
    return getline(last) =~# '^\s*->' ? indent(last) : indent(s:Start(last, 1)) + sw
  endif
  return indent(s:Start(prev, 1))
endfunction
