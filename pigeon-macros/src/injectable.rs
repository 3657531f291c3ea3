//! `#[injectable]`: implements `Injectable` by resolving every field from the
//! container (`#[inject(default)]` fields start as `Default::default()`).

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::{spanned::Spanned, Fields, ItemStruct};

pub(crate) fn expand(attr: TokenStream, input: TokenStream) -> syn::Result<TokenStream> {
    if !attr.is_empty() {
        return Err(syn::Error::new(
            attr.span(),
            "#[injectable] takes no arguments",
        ));
    }
    let mut item: ItemStruct = syn::parse2(input)?;
    if !item.generics.params.is_empty() {
        return Err(syn::Error::new(
            item.generics.span(),
            "an #[injectable] struct cannot be generic",
        ));
    }
    let ident = &item.ident;
    let owner = ident.to_string();
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
            quote_spanned!(ty.span()=> <#ty as ::pigeon::__private::Inject>::inject(__c, #owner, #name)?)
        };
        inits.push(match &field.ident {
            Some(f) => quote!(#f: #value),
            None => {
                let index = syn::Index::from(i);
                quote!(#index: #value)
            }
        });
    }
    let body = match &item.fields {
        Fields::Unit => quote!(Self),
        _ => quote!(Self { #(#inits),* }),
    };
    Ok(quote! {
        #item
        impl ::pigeon::__private::Injectable for #ident {
            fn create(
                __c: &::pigeon::__private::Container,
            ) -> ::core::result::Result<Self, ::pigeon::__private::BootstrapError> {
                ::pigeon::__private::Ok(#body)
            }
        }
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
