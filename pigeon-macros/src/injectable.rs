//! `#[injectable]`: implements `Injectable` by resolving every field from the
//! container (`#[inject(default)]` fields start as `Default::default()`), or
//! with `factory = Self::f` by calling the async function `f` with its
//! arguments resolved; `init = Self::h` runs `h(&self)` once the broker
//! listens (before `Pigeon::bootstrap` returns, dependencies first; an `Err`
//! fails the bootstrap naming the provider); `destroy = Self::g` runs
//! `g(&self)` when the app closes.
//!
//! (Documented, with examples, on the attribute in `lib.rs`.)

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::{
    parse::{Parse, ParseStream},
    spanned::Spanned,
    ExprPath, Fields, Ident, ItemStruct, Token,
};

/// The most arguments a factory may take: as many as `pigeon::app::Factory`
/// has impls (one name per argument is generated).
const MAX_FACTORY_ARGS: usize = 12;

/// `#[injectable(factory = Self::connect, init = Self::start, destroy = Self::close)]`,
/// each at most once.
#[derive(Default)]
struct Args {
    factory: Option<ExprPath>,
    init: Option<ExprPath>,
    destroy: Option<ExprPath>,
}

impl Parse for Args {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut args = Args::default();
        while !input.is_empty() {
            let key: Ident = input.parse()?;
            let slot = match key.to_string().as_str() {
                "factory" => &mut args.factory,
                "init" => &mut args.init,
                "destroy" => &mut args.destroy,
                other => {
                    return Err(syn::Error::new(
                        key.span(),
                        format!(
                        "unknown `injectable` option `{other}`; expected `factory = Self::new_fn` \
                             (an async fn building the provider), `init = Self::start_fn` \
                             (an async fn(&self) run once the broker listens) or \
                             `destroy = Self::close_fn` (an async fn(&self) run when the app closes)"
                    ),
                    ))
                }
            };
            if slot.is_some() {
                return Err(syn::Error::new(key.span(), format!("duplicate `{key}`")));
            }
            input.parse::<Token![=]>()?;
            *slot = Some(input.parse()?);
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        Ok(args)
    }
}

pub(crate) fn expand(attr: TokenStream, input: TokenStream) -> syn::Result<TokenStream> {
    let args: Args = syn::parse2(attr)?;
    let mut item: ItemStruct = syn::parse2(input)?;
    if !item.generics.params.is_empty() {
        return Err(syn::Error::new(
            item.generics.span(),
            "an #[injectable] struct cannot be generic",
        ));
    }
    let ident = item.ident.clone();
    let owner = ident.to_string();
    let create = match &args.factory {
        Some(factory) => {
            if let Some(attr) = item
                .fields
                .iter()
                .flat_map(|f| &f.attrs)
                .find(|a| a.path().is_ident("inject"))
            {
                return Err(syn::Error::new(
                    attr.span(),
                    "with `factory = ...` the factory builds every field: `#[inject]` does not apply",
                ));
            }
            let name = factory
                .path
                .segments
                .last()
                .map_or_else(|| "factory".to_owned(), |s| s.ident.to_string());
            let names = (1..=MAX_FACTORY_ARGS).map(|i| format!("{name}(#{i})"));
            quote_spanned! {factory.span()=>
                ::pigeon::__private::factory::<Self, _, _>(#factory, __c, #owner, &[#(#names),*]).await
            }
        }
        None => {
            let body = fields(&mut item, &owner)?;
            quote!(::pigeon::__private::Ok(#body))
        }
    };
    let init = args.init.as_ref().map(|init| {
        quote_spanned! {init.span()=>
            async fn init(&self) -> ::core::result::Result<(), ::pigeon::__private::BootstrapError> {
                ::pigeon::__private::InitOutput::into_init(#init(self).await, #owner)
            }
        }
    });
    let destroy = args.destroy.as_ref().map(|destroy| {
        quote_spanned! {destroy.span()=>
            async fn destroy(&self) {
                ::pigeon::__private::DestroyOutput::report(#destroy(self).await, #owner)
            }
        }
    });
    Ok(quote! {
        #item
        ::pigeon::__private::inventory::submit! {
            ::pigeon::__private::InjectableEntry {
                type_id: || ::pigeon::__private::TypeId::of::<#ident>(),
            }
        }
        impl ::pigeon::__private::Injectable for #ident {
            async fn create(
                __c: &::pigeon::__private::Container,
            ) -> ::core::result::Result<Self, ::pigeon::__private::BootstrapError> {
                #create
            }
            #init
            #destroy
        }
    })
}

/// `Self { a: <A as Inject>::inject(..).await?, .. }`, with `#[inject]`
/// attributes taken off the fields.
fn fields(item: &mut ItemStruct, owner: &str) -> syn::Result<TokenStream> {
    let mut inits = Vec::new();
    for (i, field) in item.fields.iter_mut().enumerate() {
        let default = take_inject_attr(field)?;
        let name = field
            .ident
            .as_ref()
            .map_or_else(|| i.to_string(), ToString::to_string);
        let ty = &field.ty;
        let value = if default {
            quote_spanned!(ty.span()=> <#ty as ::core::default::Default>::default())
        } else {
            quote_spanned!(ty.span()=> <#ty as ::pigeon::__private::Inject>::inject(__c, #owner, #name).await?)
        };
        inits.push(match &field.ident {
            Some(f) => quote!(#f: #value),
            None => {
                let index = syn::Index::from(i);
                quote!(#index: #value)
            }
        });
    }
    Ok(match &item.fields {
        Fields::Unit => quote!(Self),
        _ => quote!(Self { #(#inits),* }),
    })
}

/// Removes `#[inject(default)]`; true when it was there.
fn take_inject_attr(field: &mut syn::Field) -> syn::Result<bool> {
    let mut default = false;
    let mut err = None;
    field.attrs.retain(|a| {
        if !a.path().is_ident("inject") {
            return true;
        }
        let r = a.parse_nested_meta(|m| {
            if m.path.is_ident("default") {
                default = true;
                Ok(())
            } else {
                Err(m.error("unknown `inject` option; expected `default`"))
            }
        });
        if let Err(e) = r {
            err = Some(e);
        }
        false
    });
    match err {
        Some(e) => Err(e),
        None => Ok(default),
    }
}
