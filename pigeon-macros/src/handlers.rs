//! `#[handlers]` on an impl block: parse its `#[on_*]` methods into a model,
//! validate them, and generate one small wrapper per method plus an `inventory`
//! registration.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::{spanned::Spanned, FnArg, ImplItem, ImplItemFn, ItemImpl, Pat, ReturnType, Type};

use crate::{args::HookArgs, hook::Hook};

/// One handler method.
struct Handler {
    hook: Hook,
    args: HookArgs,
    method: syn::Ident,
    params: Vec<Param>,
    output: Type,
}

/// One parameter (after `&self`).
#[derive(Clone)]
struct Param {
    name: String,
    /// The extracted type (`T` of `&mut T` when `mutable`).
    ty: Type,
    mutable: bool,
}

pub(crate) fn expand(attr: TokenStream, input: TokenStream) -> syn::Result<TokenStream> {
    let optional = parse_optional(attr)?;
    let mut item: ItemImpl = syn::parse2(input)?;
    if !item.generics.params.is_empty() {
        return Err(syn::Error::new(
            item.generics.span(),
            "#[handlers] cannot be used on a generic impl block",
        ));
    }
    if let Some((_, path, _)) = &item.trait_ {
        return Err(syn::Error::new(
            path.span(),
            "#[handlers] goes on an inherent impl block, not a trait impl",
        ));
    }
    let mut handlers = Vec::new();
    let mut errors: Option<syn::Error> = None;
    for it in &mut item.items {
        let ImplItem::Fn(f) = it else { continue };
        match parse_method(f) {
            Ok(hs) => handlers.extend(hs),
            Err(e) => match &mut errors {
                Some(all) => all.combine(e),
                None => errors = Some(e),
            },
        }
    }
    if let Some(e) = errors {
        return Err(e);
    }
    let self_ty = &item.self_ty;
    let Some(first) = handlers.first() else {
        return Ok(item.into_token_stream());
    };
    let register = format_ident!("__pigeon_register_{}", first.method);
    let type_name = self_ty.to_token_stream().to_string().replace(' ', "");
    let wrappers = handlers.iter().enumerate().map(|(i, h)| wrapper(h, i));
    let registrations = handlers
        .iter()
        .enumerate()
        .map(|(i, h)| registration(h, i, self_ty));
    item.items.push(syn::parse_quote! {
        #[doc(hidden)]
        #[allow(non_snake_case)]
        fn #register(
            __svc: &::pigeon::__private::Arc<dyn ::pigeon::__private::Any + ::core::marker::Send + ::core::marker::Sync>,
            __b: &mut ::pigeon::__private::HooksBuilder,
        ) {
            let ::pigeon::__private::Ok(__svc) = __svc.clone().downcast::<Self>() else { return };
            #(#registrations)*
        }
    });
    for w in wrappers {
        item.items.push(syn::parse2(w)?);
    }
    Ok(quote! {
        #item
        ::pigeon::__private::inventory::submit! {
            ::pigeon::__private::HandlerSet {
                provider: ::pigeon::__private::type_id_of::<#self_ty>,
                name: #type_name,
                optional: #optional,
                register: <#self_ty>::#register,
            }
        }
    })
}

/// `#[handlers]` or `#[handlers(optional)]`.
fn parse_optional(attr: TokenStream) -> syn::Result<bool> {
    if attr.is_empty() {
        return Ok(false);
    }
    let ident: syn::Ident = syn::parse2(attr.clone()).map_err(|_| {
        syn::Error::new(
            attr.span(),
            "#[handlers] takes no arguments but `optional` (a library's handlers an application may leave out of its providers)",
        )
    })?;
    if ident != "optional" {
        return Err(syn::Error::new(
            ident.span(),
            format!("unknown #[handlers] argument `{ident}`: the only one is `optional`"),
        ));
    }
    Ok(true)
}

/// Takes the `#[on_*]` attributes off a method; one handler per attribute.
fn parse_method(f: &mut ImplItemFn) -> syn::Result<Vec<Handler>> {
    let mut found = Vec::new();
    let mut rest = Vec::new();
    for attr in f.attrs.drain(..) {
        let name = attr.path().segments.last().map(|s| s.ident.to_string());
        match name.as_deref().map(|n| (n, Hook::find(n))) {
            Some((_, Some(hook))) => found.push((hook, attr)),
            Some((n, None)) if n.starts_with("on_") => {
                return Err(syn::Error::new(
                    attr.path().span(),
                    format!("unknown handler attribute `#[{n}]`"),
                ));
            }
            _ => rest.push(attr),
        }
    }
    f.attrs = rest;
    if found.is_empty() {
        return Ok(Vec::new());
    }
    let sig = &f.sig;
    if sig.asyncness.is_none() {
        return Err(syn::Error::new(
            sig.fn_token.span(),
            "a handler must be an `async fn`",
        ));
    }
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new(
            sig.generics.span(),
            "a handler cannot have generic parameters",
        ));
    }
    let mut inputs = sig.inputs.iter();
    match inputs.next() {
        Some(FnArg::Receiver(r)) if r.reference.is_some() && r.mutability.is_none() => {}
        Some(other) => {
            return Err(syn::Error::new(
                other.span(),
                "a handler takes `&self` first",
            ))
        }
        None => return Err(syn::Error::new(sig.span(), "a handler takes `&self` first")),
    }
    let mut params = Vec::new();
    let mut mutable_seen = false;
    for input in inputs {
        let FnArg::Typed(pt) = input else { continue };
        let name = match &*pt.pat {
            Pat::Ident(p) => p.ident.to_string(),
            other => other.to_token_stream().to_string(),
        };
        let (ty, mutable) = match &*pt.ty {
            Type::Reference(r) if r.mutability.is_some() => {
                if mutable_seen {
                    return Err(syn::Error::new(pt.ty.span(), "a handler can take only one `&mut` parameter"));
                }
                mutable_seen = true;
                ((*r.elem).clone(), true)
            }
            Type::Reference(r) => {
                return Err(syn::Error::new(
                    r.span(),
                    "take this parameter by value (extractors are owned) or as `&mut T` to change the packet",
                ))
            }
            ty => (ty.clone(), false),
        };
        params.push(Param { name, ty, mutable });
    }
    let output = match &sig.output {
        ReturnType::Default => syn::parse_quote!(()),
        ReturnType::Type(_, ty) => (**ty).clone(),
    };
    found
        .into_iter()
        .map(|(hook, attr)| {
            let args: HookArgs = match &attr.meta {
                syn::Meta::Path(_) => HookArgs::default(),
                _ => attr.parse_args()?,
            };
            if let (Some(p), false) = (&args.pattern, hook.topic) {
                return Err(syn::Error::new(
                    p.span(),
                    format!("`#[{}]` has no topic; topic patterns go on on_publish, on_ack, on_authorize_publish, on_authorize_forward, on_published and on_request", hook.attr),
                ));
            }
            check_args(&hook, &args, &attr)?;
            check_params(&hook, &args, &params)?;
            Ok(Handler {
                hook,
                args,
                method: sig.ident.clone(),
                params: params.clone(),
                output: output.clone(),
            })
        })
        .collect()
}

/// `timeout`/`concurrency` only on `#[on_request]`, which needs a pattern.
fn check_args(hook: &Hook, args: &HookArgs, attr: &syn::Attribute) -> syn::Result<()> {
    if hook.is_request() {
        if args.pattern.is_none() {
            return Err(syn::Error::new(
                attr.path().span(),
                "`#[on_request]` needs the topic pattern of its requests, e.g. `#[on_request(\"rpc/:service/:method\")]`",
            ));
        }
        return Ok(());
    }
    let limit = args.timeout.as_ref().map(|t| &t.1);
    if let Some(name) = limit.or(args.concurrency.as_ref().map(|c| &c.1)) {
        return Err(syn::Error::new(
            name.span(),
            format!(
                "`{name}` applies only to `#[on_request]`, not to `#[{}]`",
                hook.attr
            ),
        ));
    }
    Ok(())
}

/// The last segment of a plain type path (`Client`, `pigeon::hooks::Param<T>`).
fn last_segment(ty: &Type) -> Option<&syn::PathSegment> {
    match ty {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last(),
        _ => None,
    }
}

/// Mistakes the types would report only vaguely (or at run time), caught
/// here on the parameter: `Param` without named segments to fill it, and
/// `Client` where the hook may have none.
fn check_params(hook: &Hook, args: &HookArgs, params: &[Param]) -> syn::Result<()> {
    let named = args
        .pattern
        .as_ref()
        .is_some_and(|p| p.value().split('/').any(|s| s.starts_with(':')));
    for p in params {
        let Some(seg) = last_segment(&p.ty) else {
            continue;
        };
        let ident = seg.ident.to_string();
        if hook.topic && !named && (ident == "Param" || ident == "Params") {
            let msg = match &args.pattern {
                None => format!(
                    "`{ident}` takes the `:name` segments of the handler's topic pattern, and `#[{}]` has none: add one, e.g. `#[{}(\"devices/:id\")]`",
                    hook.attr, hook.attr
                ),
                Some(pat) => format!(
                    "`{ident}` takes the `:name` segments of the topic pattern, and {:?} has none (`+` is not captured: write `:name`)",
                    pat.value()
                ),
            };
            return Err(syn::Error::new(p.ty.span(), msg));
        }
        if hook.client_may_be_absent()
            && ident == "Client"
            && seg.arguments.is_empty()
            && !p.mutable
        {
            return Err(syn::Error::new(
                p.ty.span(),
                format!(
                    "`#[{}]` may run without a client (a will whose client is gone, or a message the broker itself publishes): take `Option<Client>`",
                    hook.attr
                ),
            ));
        }
    }
    Ok(())
}

fn wrapper_name(h: &Handler, i: usize) -> syn::Ident {
    format_ident!("__pigeon_h{}_{}", i, h.method)
}

/// `fn __pigeon_hN_method(svc, cx) -> BoxFuture<..>`: extract, call, convert.
/// Each extraction and the conversion are spanned on the user's types so an
/// unsupported parameter or return type is reported there.
fn wrapper(h: &Handler, i: usize) -> TokenStream {
    let name = wrapper_name(h, i);
    let cx = h.hook.context();
    let method = &h.method;
    let mut shared = Vec::new();
    let mut mutable = Vec::new();
    let mut call_args = Vec::new();
    for (idx, p) in h.params.iter().enumerate() {
        let var = format_ident!("__p{}", idx);
        let ty = &p.ty;
        let pname = &p.name;
        if p.mutable {
            mutable.push(quote_spanned! {ty.span()=>
                let #var = <#ty as ::pigeon::__private::FromEventMut<#cx>>::from_event_mut(__cx);
            });
        } else {
            shared.push(quote_spanned! {ty.span()=>
                let #var = <#ty as ::pigeon::__private::FromEvent<#cx>>::from_event(&*__cx)
                    .map_err(|e| e.at(#idx, #pname))?;
            });
        }
        call_args.push(var);
    }
    let output = &h.output;
    let convert = quote_spanned! {output.span()=>
        <#output as ::pigeon::__private::HandlerReturn<#cx>>::into_outcome(__ret)
    };
    quote! {
        #[doc(hidden)]
        #[allow(non_snake_case, clippy::needless_lifetimes)]
        fn #name<'__a>(
            __svc: ::pigeon::__private::Arc<Self>,
            __cx: &'__a mut #cx,
        ) -> ::pigeon::__private::BoxFuture<
            '__a,
            ::core::result::Result<<#cx as ::pigeon::__private::Context>::Output, ::pigeon::__private::ExtractError>,
        > {
            ::pigeon::__private::Box::pin(async move {
                #(#shared)*
                #(#mutable)*
                let __ret = __svc.#method(#(#call_args),*).await;
                ::pigeon::__private::Ok(#convert)
            })
        }
    }
}

fn registration(h: &Handler, i: usize, self_ty: &Type) -> TokenStream {
    let name = wrapper_name(h, i);
    let cx = h.hook.context();
    let label = format!(
        "{}::{}",
        self_ty.to_token_stream().to_string().replace(' ', ""),
        h.method
    );
    let order = h.args.order.unwrap_or(0);
    let pattern = match &h.args.pattern {
        Some(p) => quote!(::core::option::Option::Some(#p)),
        None => quote!(::core::option::Option::None),
    };
    let meta = quote!(::pigeon::__private::Meta { name: #label, order: #order, pattern: #pattern });
    if h.hook.is_request() {
        let opt = |v: Option<TokenStream>| match v {
            Some(v) => quote!(::core::option::Option::Some(#v)),
            None => quote!(::core::option::Option::None),
        };
        let timeout = opt(h.args.timeout.as_ref().map(|(ms, _)| quote!(#ms)));
        let concurrency = opt(h.args.concurrency.as_ref().map(|(n, _)| quote!(#n)));
        return quote! {
            __b.request::<Self>(
                #meta,
                ::pigeon::__private::RequestLimits::new(#timeout, #concurrency),
                &__svc,
                Self::#name,
            );
        };
    }
    quote! {
        __b.handler::<Self, #cx>(
            #meta,
            &__svc,
            Self::#name,
        );
    }
}

/// `#[on_*]` outside `#[handlers]`: a compile error on the attribute.
pub(crate) fn orphan(attr: &str, item: TokenStream) -> TokenStream {
    let msg = format!("`#[{attr}]` only works on a method of an impl block marked `#[handlers]`");
    let err = syn::Error::new(Span::call_site(), msg).to_compile_error();
    quote!(#err #item)
}
