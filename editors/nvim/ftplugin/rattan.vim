" Filetype plugin for Rattan topologies (.rtn): comments, indentation settings, and `gc` where the
" editor has none (Neovim before 0.10, Vim without a commenting plugin).
if exists('b:did_ftplugin')
  finish
endif
let b:did_ftplugin = 1

" `#` starts a comment that runs to the end of the line.
setlocal commentstring=#\ %s
setlocal comments=:#
setlocal formatoptions-=t formatoptions+=croql
" `rattan fmt` indents by four spaces.
setlocal expandtab shiftwidth=4 softtabstop=4 tabstop=8
setlocal suffixesadd=.rtn
" `->` continues a chain: `w` and `*` keep a name whole.
setlocal iskeyword=@,48-57,_

let b:undo_ftplugin = 'setlocal commentstring< comments< formatoptions< expandtab< shiftwidth<'
      \ . ' softtabstop< tabstop< suffixesadd< iskeyword<'

if !get(g:, 'rattan_no_comment_mappings', 0) && maparg('gc', 'n') ==# '' && maparg('gc', 'x') ==# ''
  nnoremap <buffer> <silent> <expr> gc rattan#comment_operator()
  nnoremap <buffer> <silent> gcc :<C-U>call rattan#toggle_comment(line('.'), line('.') + v:count1 - 1)<CR>
  xnoremap <buffer> <silent> gc :<C-U>call rattan#toggle_comment(line("'<"), line("'>"))<CR>
  let b:undo_ftplugin .= ' | silent! nunmap <buffer> gc | silent! nunmap <buffer> gcc'
        \ . ' | silent! xunmap <buffer> gc'
endif
