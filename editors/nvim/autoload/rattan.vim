" `gc` for editors that have none: comments lines out with 'commentstring', or uncomments them
" when every non-blank one is a comment (as Neovim 0.10's built-in `gc` does).

function! rattan#comment_operator() abort
  set operatorfunc=rattan#comment_motion
  return 'g@'
endfunction

function! rattan#comment_motion(type) abort
  call rattan#toggle_comment(line("'["), line("']"))
endfunction

function! rattan#toggle_comment(first, last) abort
  let [left, right] = split(&commentstring, '%s', 1)
  let mark = escape(trim(left), '\/.*$^~[]')
  let lines = getline(a:first, a:last)
  let commented = 1
  let column = -1
  for line in lines
    if line =~# '^\s*$'
      continue
    endif
    if line !~# '^\s*' . mark
      let commented = 0
    endif
    let column = column < 0 ? indent(a:first + index(lines, line)) : min([column, len(matchstr(line, '^\s*'))])
  endfor
  let out = []
  for line in lines
    if line =~# '^\s*$'
      call add(out, line)
    elseif commented
      call add(out, substitute(line, '^\(\s*\)' . mark . ' \=', '\1', ''))
    else
      call add(out, strpart(line, 0, column) . left . strpart(line, column) . right)
    endif
  endfor
  call setline(a:first, out)
endfunction
